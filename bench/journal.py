"""Journal benchmark: append rate (buffered, and with group commit), read and scan rates, bytes per record.

Each number sits beside a baseline measured in the same run on equivalent data:
- append, buffered: ``Journal.append(payload)`` (payload already msgpack bytes, ~150 B, as the sequencer hands
  it over) + a final ``flush()`` vs ``json.dumps(obj)`` + ``file.write(line)`` (a buffered text file).
  Target >= 300k appends/s. A third row adds the msgpack encoding to the journal side (``encode + append``).
- append, group commit: the same with ``sync()`` (flush + fdatasync) after every batch of N records vs the
  baseline with ``flush()`` + ``os.fsync`` after every N lines.
- read: ``JournalReader.records()`` (CRC, seq and digest-chain checks, one ``Record`` per record) vs a plain
  ``for line in file`` over the JSON-lines file (no checks, no parsing). Target >= 200k records/s.
- scan: ``scan()`` (validate + digest everything, what ``Journal.open`` does) in records/s, same baseline.
- bytes/record: journal bytes on disk (headers included) vs JSON-lines bytes.

Rates are the best of 3 runs. CPU-bound rows (everything but group commit) are timed with
``time.process_time`` (this process's CPU time: one core's worth of work, robust to load from other processes);
group-commit rows are wall time, since they wait on the disk. Run: ``.venv/bin/python bench/journal.py [--quick] [--dir DIR] [--no-write]`` or ``-m bench.journal``.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # run as a script: bench/ must not shadow the journal package
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json
import os
import shutil
import tempfile
import time

import msgspec

from bench.common import Result, best_of, print_table, write_latest
from journal import HeaderInfo, Journal, JournalReader, scan

HEADER = HeaderInfo(
    run_id="bench", schema_version=1, schema_fingerprint="0" * 64, config_hash="0" * 64, seed=0, created_ns=0
)
POOL = 4096
_cpu = time.process_time
"""CPU-bound rows are timed in process CPU time: on a shared machine, wall time measures the scheduler."""
GROUP = 256


def _objects(n: int) -> list[list[object]]:
    """~150-byte envelopes like the sequencer's: [ts_ns, src, cause, event]."""
    out = []
    for i in range(n):
        ev = {
            "t": "BookChanged",
            "token_id": f"7132104567925221259462638553270691275033272857194{i % 97:04d}",
            "bid": 470_000 + i % 100 * 1000,
            "bid_size": 10_000_000 + i,
            "ask": 480_000 + i % 50 * 1000,
            "ask_size": 12_500_000 + 3 * i,
            "epoch": i // 1000,
        }
        out.append([1_700_000_000_000_000_000 + i * 1_000_000, "book", i, ev])
    return out


def _payloads(objs: list[list[object]]) -> list[bytes]:
    enc = msgspec.msgpack.Encoder(order="deterministic")
    return [enc.encode(o) for o in objs]


def _fresh(d: Path) -> Path:
    if d.exists():
        shutil.rmtree(d)
    return d


def _append_journal(root: Path, n: int, payloads: list[bytes]) -> float:
    k = len(payloads)
    jdir = _fresh(root / "append")
    j = Journal.create(jdir, HEADER)
    append = j.append
    t0 = _cpu()
    for i in range(n):
        append(payloads[i % k])
    j.flush()
    dt = _cpu() - t0
    j.close()
    return dt


def _append_json(root: Path, n: int, objs: list[list[object]]) -> float:
    k = len(objs)
    dumps = json.dumps
    with open(root / "append.jsonl", "w") as f:
        write = f.write
        t0 = _cpu()
        for i in range(n):
            write(dumps(objs[i % k]) + "\n")
        f.flush()
        return _cpu() - t0


def _append_encode(root: Path, n: int, objs: list[list[object]]) -> float:
    k = len(objs)
    jdir = _fresh(root / "append_enc")
    j = Journal.create(jdir, HEADER)
    append, encode = j.append, msgspec.msgpack.Encoder(order="deterministic").encode
    t0 = _cpu()
    for i in range(n):
        append(encode(objs[i % k]))
    j.flush()
    dt = _cpu() - t0
    j.close()
    shutil.rmtree(jdir)
    return dt


def bench_append(
    root: Path, n: int, payloads: list[bytes], objs: list[list[object]], repeat: int
) -> tuple[float, float, float]:
    """(journal appends/s, json baseline lines/s, journal encode+append/s), all buffered (no fsync).

    Best of ``repeat`` interleaved runs, so that load from other processes hits both sides alike.
    """
    t_j = t_b = t_e = float("inf")
    for _ in range(repeat):
        t_j = min(t_j, _append_journal(root, n, payloads))
        t_b = min(t_b, _append_json(root, n, objs))
        t_e = min(t_e, _append_encode(root, n, objs))
    return n / t_j, n / t_b, n / t_e


def _group_journal(root: Path, n: int, payloads: list[bytes]) -> float:
    k = len(payloads)
    jdir = _fresh(root / "group")
    j = Journal.create(jdir, HEADER)
    append, sync = j.append, j.sync
    t0 = time.perf_counter()
    for i in range(n):
        append(payloads[i % k])
        if i % GROUP == GROUP - 1:
            sync()
    sync()
    dt = time.perf_counter() - t0
    j.close()
    shutil.rmtree(jdir)
    return dt


def _group_json(root: Path, n: int, objs: list[list[object]]) -> float:
    k = len(objs)
    dumps = json.dumps
    with open(root / "group.jsonl", "w") as f:
        write, fileno = f.write, f.fileno()
        t0 = time.perf_counter()
        for i in range(n):
            write(dumps(objs[i % k]) + "\n")
            if i % GROUP == GROUP - 1:
                f.flush()
                os.fsync(fileno)
        f.flush()
        os.fsync(fileno)
        dt = time.perf_counter() - t0
    os.unlink(root / "group.jsonl")
    return dt


def bench_group_commit(
    root: Path, n: int, payloads: list[bytes], objs: list[list[object]], repeat: int
) -> tuple[float, float]:
    """(journal appends/s, baseline lines/s) with an fdatasync / fsync after every GROUP records (wall time,
    best of ``repeat`` interleaved runs: disk latency is noisy)."""
    t_j = t_b = float("inf")
    for _ in range(repeat):
        t_j = min(t_j, _group_journal(root, n, payloads))
        t_b = min(t_b, _group_json(root, n, objs))
    return n / t_j, n / t_b


def bench_read(root: Path, n: int, repeat: int) -> tuple[float, float, float, float, float]:
    """(reader records/s, scan records/s, plain-lines baseline/s, journal bytes/record, json bytes/record)."""
    jdir, jsonl = root / "append", root / "append.jsonl"
    size_j = sum(p.stat().st_size for p in jdir.glob("seg-*.pmj"))
    size_b = jsonl.stat().st_size
    for p in [*jdir.glob("seg-*.pmj"), jsonl]:  # warm the page cache for both sides alike
        p.read_bytes()

    def read_journal() -> None:
        r = JournalReader(jdir)
        count = 0
        for _ in r.records():
            count += 1
        assert count == n and r.torn is None, (count, r.torn)

    def scan_journal() -> None:
        assert scan(jdir).last_seq == n

    def read_lines() -> None:
        lines = 0
        with open(jsonl) as f:
            for _ in f:
                lines += 1
        assert lines == n

    t_r, t_s, t_b = (best_of(f, repeat, clock=_cpu) for f in (read_journal, scan_journal, read_lines))
    return n / t_r, n / t_s, n / t_b, size_j / n, size_b / n


def run(quick: bool = False, *, workdir: str | Path | None = None) -> list[Result]:
    """Run the journal benches; ``quick`` uses 50k records instead of 1M."""
    n = 50_000 if quick else 1_000_000
    repeat = 3
    objs = _objects(POOL)
    payloads = _payloads(objs)
    avg = sum(map(len, payloads)) / len(payloads)
    root = Path(tempfile.mkdtemp(prefix="pmm-bench-journal-", dir=workdir))
    try:
        a_j, a_b, a_e = bench_append(root, n, payloads, objs, repeat)
        g_j, g_b = bench_group_commit(root, n, payloads, objs, repeat)
        r_j, s_j, r_b, bpr_j, bpr_b = bench_read(root, n, repeat)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    note = f"{n:,} records, payload {avg:.0f} B msgpack"
    return [
        Result("journal.append_buffered", round(a_j), "appends/s", round(a_b), None, 300_000,
               f"{note}; CPU time; baseline json.dumps+file.write"),
        Result("journal.encode_append_buffered", round(a_e), "appends/s", round(a_b), None, None,
               "msgspec encode + append vs json.dumps + file.write"),
        Result("journal.append_group_commit", round(g_j), "appends/s", round(g_b), None, None,
               f"wall time; fdatasync every {GROUP} records; baseline os.fsync every {GROUP} lines"),
        Result("journal.read", round(r_j), "records/s", round(r_b), None, 200_000,
               "JournalReader.records (CRC+seq+digest checks) vs plain `for line in file`"),
        Result("journal.scan", round(s_j), "records/s", round(r_b), None, None,
               "scan() = full validation as Journal.open does it, vs plain `for line in file`"),
        Result("journal.bytes_per_record", round(bpr_j, 1), "bytes/record", round(bpr_b, 1), None, None,
               "on-disk bytes incl. headers vs JSON lines"),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50k records instead of 1M")
    ap.add_argument("--dir", default=None, help="where to write the scratch journals (default: system temp)")
    ap.add_argument("--no-write", action="store_true", help=f"do not update {'artifacts/bench/latest.json'}")
    args = ap.parse_args(argv)
    results = run(args.quick, workdir=args.dir)
    print_table(results)
    if not args.no_write:
        print(f"wrote {write_latest(results)}")
    return 0 if all(r.met is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
