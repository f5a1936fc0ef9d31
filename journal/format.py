"""The on-disk format, v1: segment names, the segment header, record frames, CRC masking, the running digest.

Pure functions over bytes; no file I/O. ``docs/journal-format.md`` describes the same thing byte by byte.

Segment file ``seg-<first_seq:020d>.pmj``::

    [magic 8 = 89 50 4D 4A 0D 0A 1A 0A][format_version u16][hdr_len u16][hdr_crc u32][hdr body: hdr_len bytes]
    [record frame]*

Record frame, all little-endian::

    [len u32][crc u32][seq u64][payload: len bytes]     1 <= len <= MAX_RECORD
    crc = mask(crc32c(len ‖ seq ‖ payload))

Running digest: ``d_0 = 32 zero bytes``, ``d_k = blake2b-256(d_{k-1} ‖ frame_k)`` over record frames only.
"""
from __future__ import annotations

import platform
import re
import struct
from hashlib import blake2b

import msgspec
from crc32c import crc32c

from journal.errors import JournalCorruption, JournalVersionError

MAGIC = b"\x89PMJ\r\n\x1a\n"
FORMAT_VERSION = 1
MAX_RECORD = 1 << 20
"""Largest payload a record may carry (1 MiB)."""
MAX_HEADER = 4096
"""Largest header body (v1). A larger ``hdr_len`` is damage, not a bigger header."""
FIXED_HEADER_SIZE = 16
FRAME_OVERHEAD = 16
DIGEST_SIZE = 32
ZERO_DIGEST = bytes(DIGEST_SIZE)
NO_STOP = -1
"""``stop_seq`` value for :func:`parse_frames` meaning "no limit"."""

_FIXED = struct.Struct("<8sHHI")
_FRAME = struct.Struct("<IIQ")
_LEN_SEQ = struct.Struct("<IQ")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_MASK_DELTA = 0xA282EAD8

SEGMENT_RE = re.compile(r"seg-(\d{20})\.pmj")
TMP_SUFFIX = ".tmp"


def mask(crc: int) -> int:
    """LevelDB's CRC mask: rotate right by 15 bits and add a constant (mod 2**32)."""
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked: int) -> int:
    """Inverse of :func:`mask`."""
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


def segment_name(first_seq: int) -> str:
    """The file name of the segment whose first record has seq ``first_seq``."""
    return f"seg-{first_seq:020d}.pmj"


class HeaderInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the caller records in every segment header it creates. Never read from a clock by the journal."""

    run_id: str
    schema_version: int
    schema_fingerprint: str
    config_hash: str
    seed: int
    created_ns: int
    git_sha: str = ""


class SegmentHeader(msgspec.Struct, frozen=True, array_like=True):
    """The msgpack header body. ``array_like``: field ORDER is the wire format; only append new fields."""

    segment_index: int
    first_seq: int
    prev_last_seq: int
    prev_digest: bytes
    run_id: str
    schema_version: int
    schema_fingerprint: str
    config_hash: str
    seed: int
    created_ns: int
    git_sha: str
    python: str
    msgspec: str

    @property
    def info(self) -> HeaderInfo:
        """The caller-supplied part of this header."""
        return HeaderInfo(
            run_id=self.run_id,
            schema_version=self.schema_version,
            schema_fingerprint=self.schema_fingerprint,
            config_hash=self.config_hash,
            seed=self.seed,
            created_ns=self.created_ns,
            git_sha=self.git_sha,
        )


def runtime_versions() -> tuple[str, str]:
    """(python, msgspec) version strings recorded in new segment headers."""
    return platform.python_version(), msgspec.__version__


def make_header(
    info: HeaderInfo, *, segment_index: int, first_seq: int, prev_digest: bytes, versions: tuple[str, str]
) -> SegmentHeader:
    return SegmentHeader(
        segment_index=segment_index,
        first_seq=first_seq,
        prev_last_seq=first_seq - 1,
        prev_digest=prev_digest,
        run_id=info.run_id,
        schema_version=info.schema_version,
        schema_fingerprint=info.schema_fingerprint,
        config_hash=info.config_hash,
        seed=info.seed,
        created_ns=info.created_ns,
        git_sha=info.git_sha,
        python=versions[0],
        msgspec=versions[1],
    )


_hdr_encoder = msgspec.msgpack.Encoder(order="deterministic")
_hdr_decoder = msgspec.msgpack.Decoder(SegmentHeader)


def check_header_info(info: HeaderInfo) -> None:
    """Raise ``ValueError`` unless ``info`` has the declared types (msgspec checks types only when decoding)."""
    if not isinstance(info, HeaderInfo):
        raise TypeError(f"expected HeaderInfo, got {type(info).__name__}")
    try:
        msgspec.convert(msgspec.structs.asdict(info), HeaderInfo)
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid HeaderInfo: {exc}") from None
    if not (-(1 << 63) <= info.seed < (1 << 64) and -(1 << 63) <= info.created_ns < (1 << 64)):
        raise ValueError("invalid HeaderInfo: seed and created_ns must fit in 64 bits")


def encode_header(hdr: SegmentHeader) -> bytes:
    """The full segment header: fixed 16 bytes plus the msgpack body."""
    body = _hdr_encoder.encode(hdr)
    if len(body) > MAX_HEADER:
        raise ValueError(f"segment header body is {len(body)} bytes; the limit is {MAX_HEADER}")
    head = MAGIC + _U16.pack(FORMAT_VERSION) + _U16.pack(len(body))
    return head + _U32.pack(mask(crc32c(body, crc32c(head)))) + body


class IncompleteHeader(JournalCorruption):
    """The segment header is cut short or invalid with nothing after it: a crash while creating the segment.

    Recovery deletes such a segment when it is the last one; anywhere else it is corruption (hence the base).
    """


def _all_zero(data: bytes, start: int = 0) -> bool:
    return data.count(0, start) == len(data) - start


def read_header(data: bytes, path: str) -> tuple[SegmentHeader, int]:
    """Parse and check the header at the start of ``data`` (a whole segment, or at least its header).

    Returns the header and the offset of the first record frame.

    Raises:
        IncompleteHeader: the header is short or invalid and nothing follows it (crash during creation).
        JournalVersionError: a well-formed header of another format version.
        JournalCorruption: anything else (bad magic, CRC mismatch with data after it, undecodable body).
    """
    n = len(data)
    if n == 0 or (data[0] == 0 and _all_zero(data)):
        raise IncompleteHeader(path, 0, f"segment header missing ({n} zero bytes): crash while creating segment")
    k = min(n, len(MAGIC))
    if data[:k] != MAGIC[:k]:
        raise JournalCorruption(path, 0, f"bad magic {bytes(data[:k]).hex()}: not a pmm journal segment")
    if n < FIXED_HEADER_SIZE:
        raise IncompleteHeader(path, n, "segment header cut short: crash while creating segment")
    _, version, hdr_len, stored = _FIXED.unpack_from(data, 0)
    end = FIXED_HEADER_SIZE + hdr_len
    if hdr_len > MAX_HEADER:
        if version != FORMAT_VERSION:
            raise JournalVersionError(path, version, FORMAT_VERSION)
        raise JournalCorruption(path, 10, f"header length {hdr_len} exceeds {MAX_HEADER}: damaged header")
    if n < end:
        true_len = _repair_header_len(data, stored)
        if true_len is not None:
            raise JournalCorruption(path, 10, f"header length field says {hdr_len}, header is {true_len}")
        if version != FORMAT_VERSION:
            raise JournalVersionError(path, version, FORMAT_VERSION)
        raise IncompleteHeader(path, n, "segment header cut short: crash while creating segment")
    if mask(crc32c(data[FIXED_HEADER_SIZE:end], crc32c(data[:12]))) != stored:
        if n == end:
            raise IncompleteHeader(path, 12, "segment header CRC mismatch and nothing after it")
        raise JournalCorruption(path, 12, "segment header CRC mismatch")
    if version != FORMAT_VERSION:
        raise JournalVersionError(path, version, FORMAT_VERSION)
    try:
        hdr = _hdr_decoder.decode(data[FIXED_HEADER_SIZE:end])
    except msgspec.DecodeError as exc:
        raise JournalCorruption(path, FIXED_HEADER_SIZE, f"segment header body does not decode: {exc}") from None
    if len(hdr.prev_digest) != DIGEST_SIZE:
        raise JournalCorruption(path, FIXED_HEADER_SIZE, f"prev_digest is {len(hdr.prev_digest)} bytes, not 32")
    return hdr, end


def _repair_header_len(data: bytes, stored: int) -> int | None:
    """If some shorter ``hdr_len`` makes the header CRC match, the length field itself is damaged."""
    head = bytes(data[:10])
    for cand in range(1, min(len(data) - FIXED_HEADER_SIZE, MAX_HEADER) + 1):
        if mask(crc32c(data[FIXED_HEADER_SIZE:FIXED_HEADER_SIZE + cand], crc32c(head + _U16.pack(cand)))) == stored:
            return cand
    return None


def frame_crc(length: int, seq: int, payload: bytes | memoryview) -> int:
    """The masked CRC stored in a frame."""
    return mask(crc32c(payload, crc32c(_LEN_SEQ.pack(length, seq))))


def encode_frame(seq: int, payload: bytes) -> bytes:
    """One record frame (the writer inlines this; kept for tests and tools)."""
    n = len(payload)
    if not 1 <= n <= MAX_RECORD:
        raise ValueError(f"record payload must be 1..{MAX_RECORD} bytes, got {n}")
    return _FRAME.pack(n, frame_crc(n, seq, payload), seq) + bytes(payload)


def chain(digest: bytes, frame: bytes | memoryview) -> bytes:
    """One step of the running digest."""
    return blake2b(digest + frame, digest_size=DIGEST_SIZE).digest()


def parse_frames(
    data: bytes,
    off: int,
    seq: int,
    stop_seq: int,
    digest: bytes | None,
    out: list | None,
    make: type | None = None,
    segment: str = "",
    base: int = 0,
) -> tuple[int, int, bytes | None]:
    """Validate consecutive frames of ``data`` from ``off``; the hot loop of every reader.

    Stops at the end of ``data``, at the first frame that is not a valid record with seq ``seq`` (the caller
    then asks :func:`diagnose_tail` why), or before seq ``stop_seq`` (``NO_STOP``: never). Each good record
    updates ``digest`` (unless None) and, if ``out`` is a list, appends ``make(seq, payload, segment, base+off)``.

    Returns ``(offset after the last good frame, next expected seq, digest)``.
    """
    end = len(data)
    mv = memoryview(data)
    unpack = _FRAME.unpack_from
    b2 = blake2b
    while off + 16 <= end and seq != stop_seq:
        n, c, s = unpack(data, off)
        e = off + 16 + n
        if s != seq or e > end or n == 0 or n > MAX_RECORD:
            break
        x = crc32c(mv[off + 8:e], crc32c(mv[off:off + 4]))
        if (((x >> 15) | (x << 17)) + 0xA282EAD8) & 0xFFFFFFFF != c:
            break
        if digest is not None:
            digest = b2(digest + mv[off:e], digest_size=32).digest()
        if out is not None:
            out.append(make(s, data[off + 16:e], segment, base + off))  # type: ignore[misc]
        off = e
        seq += 1
    return off, seq, digest


def _crc_ok(data: bytes, off: int, n: int, stored: int) -> bool:
    return mask(crc32c(data[off + 8:off + 16 + n], crc32c(_U32.pack(n)))) == stored


def _later_frame(data: bytes, off: int, seq: int) -> int | None:
    """Offset of a CRC-valid frame with seq in [seq, seq+8] starting after ``off``, if any: evidence that the
    bytes at ``off`` are not the unfinished end of the log."""
    end = len(data)
    for want in range(seq, seq + 9):
        pat = _U64.pack(want)
        p = data.find(pat, off + 9)
        while p != -1:
            start = p - 8
            if start + 16 <= end:
                n, c, _ = _FRAME.unpack_from(data, start)
                if 1 <= n <= MAX_RECORD and start + 16 + n <= end and _crc_ok(data, start, n, c):
                    return start
            p = data.find(pat, p + 1)
    return None


def diagnose_tail(data: bytes, off: int, seq: int, base: int = 0) -> tuple[bool, str]:
    """Classify the bytes ``data[off:]`` after the last good frame of a segment (B8, refined).

    Returns ``(torn, what)``. ``torn`` means the bytes can be the unfinished end of the log (an append cut by a
    crash) and may be cut off when this is the last segment; otherwise they are corruption. Rules, in order:

    1. all zero (preallocation, size persisted before data): torn;
    2. a CRC-valid frame here with the wrong seq: corruption (seq gap or misplaced record);
    3. a CRC-valid frame for seq..seq+8 anywhere after ``off``: corruption (data was written after the damage);
    4. frame header cut by EOF, or the declared end past EOF: torn;
    5. CRC mismatch and only zeros after the declared end: torn;
    6. the stored CRC matches when the length is taken as "to EOF" (only the length field of the very last
       frame is damaged): torn;
    7. anything else (non-zero bytes after a bad frame): corruption.

    ``base`` is the file offset of ``data[0]`` (for messages).
    """
    end = len(data)
    rest = end - off
    if _all_zero(data, off):
        return True, f"{rest} zero bytes after the last record"
    if rest >= 16:
        n, c, s = _FRAME.unpack_from(data, off)
        fend = off + 16 + n
        if 1 <= n <= MAX_RECORD and fend <= end and _crc_ok(data, off, n, c):
            return False, f"record has seq {s} where seq {seq} was expected (seq gap or misplaced record)"
    later = _later_frame(data, off, seq)
    if later is not None:
        return False, f"damaged record where seq {seq} was expected, but a valid record follows at offset {base + later}"
    if rest < 16:
        return True, f"record header cut short by EOF ({rest} of 16 bytes)"
    if fend > end:
        return True, f"record seq {seq} cut short by EOF ({rest - 16} of {n} payload bytes)"
    bad_len = n == 0 or n > MAX_RECORD
    if not bad_len and _all_zero(data, fend):
        return True, f"record seq {seq} fails its CRC and only zeros follow it"
    if 1 <= rest - 16 <= MAX_RECORD and _crc_ok(data, off, rest - 16, c):
        return True, f"last record (seq {seq}) has a damaged length field"
    if bad_len:
        return False, f"invalid record length {n} where seq {seq} was expected, followed by non-zero data"
    return False, f"record seq {seq} fails its CRC and is followed by {end - fend} bytes of non-zero data"
