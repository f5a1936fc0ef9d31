"""Optional coverage-guided fuzzing with atheris (libFuzzer for Python). Not part of the test suite.

    .venv/bin/python -m pip install atheris
    .venv/bin/python fuzz/run.py frames  -atheris_runs=200000
    .venv/bin/python fuzz/run.py book    -max_total_time=300
    .venv/bin/python fuzz/run.py journal -max_total_time=300
    .venv/bin/python fuzz/run.py config  -max_total_time=300

Targets (the same properties as tests/test_fuzz.py, which runs without atheris):
- ``frames``: ``parse_frame`` never raises;
- ``book``: the book actor stepping the input as a stream of frames (one per line) never raises, every event it
  emits passes the journal's decode validation and a valid book is never crossed;
- ``journal``: the input as a segment file: ``JournalReader`` and ``scan`` give records or a ``JournalError``;
  inputs that start with a real journal's bytes are mutations of it, and every record returned must be one of
  the records written;
- ``config``: ``parse_config`` gives an ``AppConfig`` or a one-line ``ConfigError``.

A seed corpus (real sandbox frames, a real journal segment, the default config) is written to a temporary folder
and passed to libFuzzer unless corpus folders are given after the target. Crashes are written by libFuzzer to
``crash-*`` files in the current folder; rerun one with ``fuzz/run.py TARGET crash-FILE``.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

try:
    import atheris
except ImportError:  # pragma: no cover - optional tool
    sys.exit("fuzz/run.py needs atheris: .venv/bin/python -m pip install atheris")

with atheris.instrument_imports(include=["actors", "journal", "pmm", "events"]):
    from actors.core.book import BookActor
    from actors.core.frames import parse_frame
    from events.codec import Envelope, decode, encode
    from events.market import BookChanged, FeedFrame
    from events.params import CoreParams, MarketParams
    from journal import HeaderInfo, Journal, JournalError, JournalReader, scan
    from pmm.config import ConfigError, parse_config

INFO = HeaderInfo(run_id="fuzz", schema_version=1, schema_fingerprint="f" * 64, config_hash="c" * 64, seed=1,
                  created_ns=1)
PAYLOADS = [bytes([i % 251 + 1]) * (1 + (i * 37) % 300) for i in range(40)]
WORK = Path(tempfile.mkdtemp(prefix="pmm-atheris-"))


def _sim() -> tuple[CoreParams, list[str]]:
    import msgspec

    from sandbox.sim import MarketSim

    sim = MarketSim(11, "edge")
    m = sim.markets[0]
    params = CoreParams(markets=(MarketParams(condition_id=m.condition_id, yes_token=m.yes_token, no_token=m.no_token),))
    texts = [msgspec.json.encode([sim.book_event(m.yes_token), sim.book_event(m.no_token)]).decode()]
    for _ in range(50):
        texts += [msgspec.json.encode(f).decode() for f in sim.step()]
    return params, texts


PARAMS, FRAMES = _sim()


def _real_segment() -> bytes:
    path = WORK / "template"
    with Journal.create(path, INFO) as j:
        for p in PAYLOADS:
            j.append(p)
    return (path / "seg-00000000000000000001.pmj").read_bytes()


SEGMENT = _real_segment()


def t_frames(data: bytes) -> None:
    parse_frame(data.decode("utf-8", "replace"))


def t_book(data: bytes) -> None:
    book = BookActor(PARAMS)
    for seq, line in enumerate(data.decode("utf-8", "replace").split("\n"), 1):
        for e in book.step(seq, Envelope(ts_ns=seq, src="feed", cause=0, ev=FeedFrame(conn=1, text=line))):
            decode(encode(Envelope(ts_ns=seq, src="book", cause=seq, ev=e)))
            if isinstance(e, BookChanged) and e.valid and e.best_bid and e.best_ask:
                assert e.best_bid < e.best_ask, e


def t_journal(data: bytes) -> None:
    d = WORK / "j"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    (d / "seg-00000000000000000001.pmj").write_bytes(data)
    try:
        for i, r in enumerate(JournalReader(d).records()):
            assert r.seq == i + 1
            if data[:200] == SEGMENT[:200]:  # a mutation of the real journal: records must be the originals
                assert r.seq <= len(PAYLOADS) and bytes(r.payload) == PAYLOADS[r.seq - 1], r.seq
    except JournalError:
        pass
    try:
        scan(d)
    except JournalError:
        pass


def t_config(data: bytes) -> None:
    try:
        parse_config(data)
    except ConfigError as exc:
        assert "\n" not in str(exc), str(exc)


TARGETS = {"frames": t_frames, "book": t_book, "journal": t_journal, "config": t_config}


def _seed_corpus(target: str) -> str:
    d = WORK / f"corpus-{target}"
    d.mkdir(exist_ok=True)
    if target in ("frames", "book"):
        for i, t in enumerate(FRAMES[:40]):
            (d / f"f{i}").write_text(t if target == "frames" else "\n".join(FRAMES[i:i + 5]))
    elif target == "journal":
        (d / "segment").write_bytes(SEGMENT)
    else:
        import msgspec

        from pmm.config import AppConfig

        (d / "default.json").write_bytes(msgspec.json.encode(AppConfig()))
    return str(d)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: fuzz/run.py {{{'|'.join(TARGETS)}}} [libFuzzer options] [corpus dirs or crash files]")
    target = sys.argv[1]
    args = [sys.argv[0], *sys.argv[2:]]
    if not any(not a.startswith("-") for a in args[1:]):
        args.append(_seed_corpus(target))
    atheris.Setup(args, TARGETS[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
