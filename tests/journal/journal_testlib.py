"""Shared helpers for the journal tests: an independent reference encoder, IO seams, journal builders."""
from __future__ import annotations

import errno
import os
import shutil
import struct
import threading
from hashlib import blake2b
from pathlib import Path

import crc32c

from journal import FileOps, HeaderInfo, Journal
from journal.format import encode_header, make_header, segment_name

INFO = HeaderInfo(
    run_id="run-0001",
    schema_version=1,
    schema_fingerprint="f" * 64,
    config_hash="c" * 64,
    seed=42,
    created_ns=1_700_000_000_000_000_000,
    git_sha="0123456789abcdef",
)
INFO2 = HeaderInfo(
    run_id="run-0002", schema_version=1, schema_fingerprint="f" * 64, config_hash="d" * 64, seed=43, created_ns=5
)


# ---------------------------------------------------------------- reference model (written independently)

def ref_frame(seq: int, payload: bytes) -> bytes:
    n = len(payload)
    c = crc32c.crc32c(struct.pack("<I", n) + struct.pack("<Q", seq) + payload)
    masked = (((c >> 15) | (c << 17)) + 0xA282EAD8) % (1 << 32)
    return struct.pack("<I", n) + struct.pack("<I", masked) + struct.pack("<Q", seq) + payload


def ref_digest(payloads: list[bytes]) -> str:
    d = bytes(32)
    for i, p in enumerate(payloads, 1):
        d = blake2b(d + ref_frame(i, p), digest_size=32).digest()
    return d.hex()


def ref_digest_bytes(payloads: list[bytes]) -> bytes:
    return bytes.fromhex(ref_digest(payloads))


def payloads_for(n: int, *, start: int = 0, size: int | None = None) -> list[bytes]:
    """Deterministic, varied, non-empty payloads."""
    out = []
    for i in range(start, start + n):
        k = size if size is not None else 1 + (i * 7) % 29
        out.append(bytes(((i * 31 + j * 17 + 1) % 251) + 1 for j in range(k)))
    return out


# ---------------------------------------------------------------- IO seams

class NoSyncIO(FileOps):
    """Real writes, no fsyncs (fast tests); counts the syncs it skipped."""

    def __init__(self) -> None:
        self.syncs = 0
        self.calls: list[str] = []

    def fsync(self, fd: int) -> None:
        self.syncs += 1
        self.calls.append("fsync")

    def fdatasync(self, fd: int) -> None:
        self.syncs += 1
        self.calls.append("fdatasync")

    def fsync_dir(self, path: str) -> None:
        self.calls.append("fsync_dir")

    def rename(self, src: str, dst: str) -> None:
        self.calls.append(f"rename {Path(src).name} {Path(dst).name}")
        super().rename(src, dst)

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        self.calls.append(f"open {Path(path).name}")
        return super().open(path, flags, mode)


class FaultIO(NoSyncIO):
    """Fails the chosen operation with ``err`` once ``armed`` is set."""

    def __init__(self, fail: str, err: int = errno.ENOSPC) -> None:
        super().__init__()
        self.fail = fail
        self.err = err
        self.armed = False
        self.attempts: dict[str, int] = {}

    def _maybe(self, op: str) -> None:
        self.attempts[op] = self.attempts.get(op, 0) + 1
        if self.armed and op == self.fail:
            raise OSError(self.err, os.strerror(self.err))

    def write(self, fd: int, data: memoryview) -> int:
        self._maybe("write")
        return super().write(fd, data)

    def fsync(self, fd: int) -> None:
        self._maybe("fsync")
        super().fsync(fd)

    def fdatasync(self, fd: int) -> None:
        self._maybe("fdatasync")
        super().fdatasync(fd)

    def open(self, path: str, flags: int, mode: int = 0o644) -> int:
        self._maybe("open")
        return super().open(path, flags, mode)


class GateIO(NoSyncIO):
    """fdatasync blocks until ``gate`` is set; records how many bytes were written when each sync started."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.written = 0
        self.synced_at: list[int] = []

    def write(self, fd: int, data: memoryview) -> int:
        n = super().write(fd, data)
        self.written += n
        return n

    def fdatasync(self, fd: int) -> None:
        self.synced_at.append(self.written)
        assert self.gate.wait(10), "test gate never opened"
        super().fdatasync(fd)


# ---------------------------------------------------------------- builders

def build(path: Path, payloads: list[bytes], *, segment_bytes: int = 1 << 20, info: HeaderInfo = INFO) -> Path:
    with Journal.create(path, info, segment_bytes=segment_bytes, io=NoSyncIO()) as j:
        for p in payloads:
            j.append(p)
    return path


def segments(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.name.endswith(".pmj"))


def snapshot(path: Path) -> dict[str, tuple[bytes, int]]:
    """Every file's bytes and mtime (ns): to prove something changed nothing."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(path.iterdir())}


def copy_journal(src: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    return dst


def craft_segment(
    path: Path, *, index: int, first_seq: int, prev_digest: bytes, payloads: list[bytes], name_seq: int | None = None,
    info: HeaderInfo = INFO,
) -> Path:
    """Hand-build a segment file (headers and frames from the reference encoder)."""
    hdr = make_header(info, segment_index=index, first_seq=first_seq, prev_digest=prev_digest,
                      versions=("3.11.7", "0.22.0"))
    data = encode_header(hdr) + b"".join(ref_frame(first_seq + i, p) for i, p in enumerate(payloads))
    out = path / segment_name(first_seq if name_seq is None else name_seq)
    out.write_bytes(data)
    return out


def frame_ends(data: bytes, hdr_end: int) -> list[int]:
    """End offsets of the frames in one segment's bytes (trusting the lengths)."""
    ends, off = [], hdr_end
    while off + 16 <= len(data):
        (n,) = struct.unpack_from("<I", data, off)
        off += 16 + n
        if off > len(data):
            break
        ends.append(off)
    return ends
