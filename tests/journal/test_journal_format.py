"""Format: golden bytes, CRC mask, header encoding, byte-identical output for identical inputs."""
from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest
from crc32c import crc32c
from tests.journal.journal_testlib import INFO, NoSyncIO, build, ref_digest, ref_frame, segments

from journal import HeaderInfo, Journal, JournalReader, SegmentHeader
from journal.format import (
    FIXED_HEADER_SIZE,
    MAGIC,
    ZERO_DIGEST,
    encode_frame,
    encode_header,
    make_header,
    mask,
    read_header,
    runtime_versions,
    unmask,
)

GOLDEN = Path(__file__).with_name("golden_segment.hex")
GOLDEN_PAYLOADS = [b"\x01", b"hello journal", bytes(range(256)), b"\x92\xa3abc\xcd\x01\x00", b"z" * 40]
GOLDEN_VERSIONS = ("3.11.7", "0.22.0")


def _golden_bytes(tmp_path: Path) -> bytes:
    """Write the golden journal with the real writer, then pin the runtime version strings in the header."""
    jdir = build(tmp_path / "g", GOLDEN_PAYLOADS)
    (seg,) = segments(jdir)
    data = seg.read_bytes()
    hdr, end = read_header(data, str(seg))
    assert (hdr.python, hdr.msgspec) == runtime_versions()
    assert hdr == make_header(INFO, segment_index=0, first_seq=1, prev_digest=ZERO_DIGEST, versions=runtime_versions())
    pinned = msgspec.structs.replace(hdr, python=GOLDEN_VERSIONS[0], msgspec=GOLDEN_VERSIONS[1])
    return encode_header(pinned) + data[end:]


def test_golden_segment_bytes_when_format_unchanged_then_identical(tmp_path: Path) -> None:
    got = _golden_bytes(tmp_path)
    if os.environ.get("PMM_REGEN_GOLDEN"):
        GOLDEN.write_text("\n".join(got[i:i + 32].hex() for i in range(0, len(got), 32)) + "\n")
    want = bytes.fromhex(GOLDEN.read_text().replace("\n", ""))
    assert got == want, "journal format changed: bump FORMAT_VERSION (or regenerate with PMM_REGEN_GOLDEN=1)"


def test_golden_records_match_reference_encoder(tmp_path: Path) -> None:
    want = bytes.fromhex(GOLDEN.read_text().replace("\n", ""))
    hdr_len = int.from_bytes(want[10:12], "little")
    frames = want[FIXED_HEADER_SIZE + hdr_len:]
    assert frames == b"".join(ref_frame(i, p) for i, p in enumerate(GOLDEN_PAYLOADS, 1))


def test_crc32c_and_mask_when_known_vector_then_match() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    for v in (0, 1, 0xFFFFFFFF, 0xE3069283, 0x12345678):
        assert unmask(mask(v)) == v
    assert mask(0) == 0xA282EAD8


def test_encode_frame_when_compared_with_reference_then_equal() -> None:
    for seq, p in [(1, b"a"), (2**40, b"x" * 1000), (7, bytes(150))]:
        assert encode_frame(seq, p) == ref_frame(seq, p)
    with pytest.raises(ValueError):
        encode_frame(1, b"")


def test_header_round_trip_and_layout() -> None:
    hdr = make_header(INFO, segment_index=3, first_seq=99, prev_digest=b"\x07" * 32, versions=("3.11.7", "0.22.0"))
    data = encode_header(hdr)
    assert data[:8] == MAGIC
    assert int.from_bytes(data[8:10], "little") == 1
    assert int.from_bytes(data[10:12], "little") == len(data) - 16
    assert int.from_bytes(data[12:16], "little") == mask(crc32c(data[16:], crc32c(data[:12])))
    back, end = read_header(data, "x")
    assert back == hdr and end == len(data)
    assert back.prev_last_seq == 98
    assert back.info == INFO
    assert isinstance(back, SegmentHeader)


def test_header_info_when_wrong_types_then_rejected(tmp_path: Path) -> None:
    bad = HeaderInfo(run_id="r", schema_version="1", schema_fingerprint="f", config_hash="c", seed=1,  # type: ignore[arg-type]
                     created_ns=0)
    with pytest.raises(ValueError, match=r"^invalid HeaderInfo"):
        Journal.create(tmp_path / "j", bad)
    assert not (tmp_path / "j").exists()


def test_same_inputs_when_written_twice_then_byte_identical(tmp_path: Path) -> None:
    payloads = [bytes([i % 256]) * (1 + i % 50) for i in range(300)]
    a = build(tmp_path / "a", payloads, segment_bytes=2000)
    b = build(tmp_path / "b", payloads, segment_bytes=2000)
    sa, sb = segments(a), segments(b)
    assert len(sa) > 3
    assert [p.name for p in sa] == [p.name for p in sb]
    for x, y in zip(sa, sb, strict=True):
        assert x.read_bytes() == y.read_bytes()
    # the digest does not depend on how records are split into segments
    c = build(tmp_path / "c", payloads, segment_bytes=1 << 20)
    assert JournalReader(a).digest == JournalReader(c).digest == ref_digest(payloads)


def test_segment_roll_when_size_reached_then_segments_never_exceed_limit(tmp_path: Path) -> None:
    payloads = [b"p" * (1 + i % 60) for i in range(500)]
    jdir = build(tmp_path / "j", payloads, segment_bytes=1000)
    segs = segments(jdir)
    assert len(segs) > 10
    for s in segs:
        assert s.stat().st_size <= 1000
    # a record larger than segment_bytes gets a segment of its own
    with Journal.create(tmp_path / "big", INFO, segment_bytes=300, io=NoSyncIO()) as j:
        j.append(b"a")
        j.append(b"b" * 1000)
        j.append(b"c")
    assert [s.stat().st_size > 300 for s in segments(tmp_path / "big")] == [False, True, False]
    assert [r.payload for r in JournalReader(tmp_path / "big").records()] == [b"a", b"b" * 1000, b"c"]
