"""Replay benchmark: ``replay verify`` events/s on a realistic journal of >= 1M records (50k with ``--quick``).

- ``replay.verify``: ``replay.verify.verify(path)`` over the whole journal (read + CRC/digest checks, decode,
  re-run of the full core over every input, byte comparison of every derived record), in records per second,
  against a **decode-only** pass over the same file (``JournalReader.records()`` + ``events.codec.decode`` of
  every payload): what any reader of the journal pays before doing anything. Target >= 200k records/s.
- ``replay.verify_floor``: every step of ``verify`` except the actors' own work (read with all checks, tell
  inputs from derived records, decode inputs, build and encode every envelope, compare), the derived events
  decoded beforehand: the speed of ``verify`` with a core that costs nothing. Against the same decode-only pass.
- ``replay.core_us_per_record``: verify minus floor, per record: what the actors (and the sequencer's routing) add.
- ``replay.bytes_per_record``: on-disk size of that journal per record (headers included), for context.

The journal is recorded the way a paper session (fills=sim) records one, without sockets: a
``replay.harness.ScriptedSession`` writing to disk, two markets from the sandbox's pure ``MarketSim`` (scenario
``busy``, its eight markets' order flow concentrated on two), its frames encoded as the sandbox's market channel
sends them (initial dump, ``price_change``, ``last_trade_price``, ``book``, ``tick_size_change``; no custom
``best_bid_ask``), a ``PONG`` every 10 s, a ``Tick`` every 250 ms, stopped with ``OperatorStop`` + ``RunEnded``.

The journal is cached under ``<cache>/replay-<records>/`` (``artifacts/bench/`` with ``pmm bench``) with the
fingerprint of everything its bytes depend on (event schema, core, sequencer, journal format, simulator and
this generator); a different fingerprint regenerates it. Times are process CPU time, best of a few interleaved
runs. Run: ``pmm bench replay`` or ``.venv/bin/python -m bench.replay [--quick]``.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # run as a script: bench/ must not shadow the replay package
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import hashlib
import json
import shutil
import time

from bench.common import Result, best_of_pair, standalone

GENERATOR_VERSION = 1
FULL_RECORDS = 1_000_000
QUICK_RECORDS = 50_000
SEED = 11
TICK_NS = 250_000_000
PING_NS = 10_000_000_000
_cpu = time.process_time

ROOT = Path(__file__).resolve().parents[1]
_FINGERPRINT_SOURCES = (
    "events/*.py",
    "actors/core/*.py",
    "actors/sequencer.py",
    "actors/wiring.py",
    "journal/*.py",
    "replay/harness.py",
    "replay/journal_io.py",
    "sandbox/sim.py",
    "sandbox/book.py",
    "sandbox/wire.py",
    "sandbox/markets.py",
    "sandbox/scenarios.py",
    "bench/replay.py",
)


def fingerprint() -> str:
    """Hash of the schema fingerprint and of every source file the journal's bytes depend on."""
    from events.codec import SCHEMA_FINGERPRINT

    h = hashlib.sha256(f"{SCHEMA_FINGERPRINT}/{GENERATOR_VERSION}".encode())
    for pattern in _FINGERPRINT_SOURCES:
        for p in sorted(ROOT.glob(pattern)):
            h.update(p.relative_to(ROOT).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _market_params(sim):  # -> list[MarketParams]
    from events.params import MarketParams

    out = []
    for m in sim.markets:
        out.append(MarketParams(
            condition_id=m.condition_id,
            yes_token=m.yes_token,
            no_token=m.no_token,
            tick=sim.tick(m.yes_token) * 100,  # pips -> micro-dollars
            min_order_size=m.min_order_size * 1_000_000,
            reward_min_size=m.rewards_min_size * 1_000_000,
            reward_max_spread=round(m.rewards_max_spread * 10_000),  # cents -> micro-dollars
        ))
    return out


def generate(path: Path, records: int, *, seed: int = SEED) -> dict:
    """Record a paper-sim session journal of at least ``records`` records at ``path`` (which must not exist)."""
    from events.control import OperatorStop, RunEnded, Tick
    from events.market import FeedFrame, FeedStatus
    from events.params import CoreParams
    from replay.harness import ScriptedSession
    from sandbox.scenarios import get_scenario
    from sandbox.sim import T0_MS, MarketSim
    from sandbox.wire import encode

    sim = MarketSim(seed, get_scenario("busy").with_(name="bench-replay", n_markets=2))
    params = CoreParams(markets=tuple(_market_params(sim)), fills="sim", quoting=True)
    t0 = T0_MS * 1_000_000
    session = ScriptedSession(params, run_id="bench-replay", seed=seed, mode="paper", journal_dir=path, start_ns=t0)
    journal = session.sink.journal
    send = session.send
    url = "ws://127.0.0.1/ws/market"
    send("feed", t0 + 1_000, FeedStatus(conn=1, state="connecting", detail=url))
    send("feed", t0 + 2_000, FeedStatus(conn=1, state="connected", detail=url))
    tokens = [t for m in sim.markets for t in m.tokens]
    send("feed", t0 + 3_000_000, FeedFrame(conn=1, text=encode([sim.book_event(t) for t in tokens])))
    next_tick, next_ping, frames = t0 + TICK_NS, t0 + PING_NS, 1
    started = time.perf_counter()
    while journal.last_seq < records:
        step_frames = sim.step()
        ts = sim.now_ms * 1_000_000
        while next_tick <= ts:
            send("clock", next_tick, Tick())
            next_tick += TICK_NS
        if next_ping <= ts:
            send("feed", next_ping, FeedFrame(conn=1, text="PONG"))
            next_ping += PING_NS
        for i, frame in enumerate(step_frames):
            # what a subscriber without custom_feature_enabled receives (sandbox/ws.py MarketHub.broadcast)
            evs = frame if isinstance(frame, list) else [frame]
            sel = [e for e in evs if e.get("event_type") != "best_bid_ask"]
            if not sel:
                continue
            text = encode(sel if isinstance(frame, list) else sel[0])
            send("feed", ts + 50_000 + i * 20_000, FeedFrame(conn=1, text=text))
            frames += 1
        session.records.clear()  # the harness keeps every record in memory; we only need the file
    end = session.now + 1_000_000
    send("operator", end, OperatorStop(reason="bench"))
    send("session", end, RunEnded(reason="bench"))
    session.close()
    elapsed = time.perf_counter() - started
    n = journal.last_seq
    return {"records": n, "frames": frames, "seconds": round(elapsed, 1), "record_rate": round(n / elapsed)}


def cached_journal(cache_dir: Path, records: int, *, log=print) -> tuple[Path, dict, bool]:
    """(journal dir, meta, generated now) for a journal of >= ``records`` records, regenerated when stale."""
    base = Path(cache_dir) / f"replay-{records}"
    meta_path, jdir = base / "meta.json", base / "journal"
    fp = fingerprint()
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == fp and jdir.is_dir():
            return jdir, meta, False
    except (OSError, ValueError):
        pass
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    log(f"bench replay: recording a {records:,}-record journal in {jdir} (cached for later runs) ...")
    meta = generate(jdir, records)
    meta["fingerprint"] = fp
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return jdir, meta, True


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def decode_only(path: Path) -> int:
    """The baseline: read every record (with the reader's checks) and decode its envelope."""
    from events.codec import decode
    from journal import JournalReader

    n = 0
    for rec in JournalReader(path).records():
        decode(rec.payload)
        n += 1
    return n


def load_outputs(path: Path) -> list:
    """Every record's envelope, decoded once up front (outside any timing) for :func:`verify_floor`."""
    from events.codec import decode
    from journal import JournalReader

    return [decode(rec.payload) for rec in JournalReader(path).records()]


def verify_floor(path: Path, envs: list) -> int:
    """``verify`` with actors that cost nothing: what re-running a core costs before any actor does any work.

    Every step ``verify`` takes except the actors' own: read the journal with the reader's checks, tell inputs
    from derived records (``decode_head``), decode each input in full, and for every record build its
    ``Envelope`` and encode it as the sequencer does, then compare the bytes with the recorded ones. The
    derived events come from ``envs`` (decoded beforehand) instead of from actors.
    """
    from events.codec import Envelope, decode, decode_head, encode
    from journal import JournalReader

    n = 0
    for rec, renv in zip(JournalReader(path).records(), envs, strict=True):
        payload = rec.payload
        if decode_head(payload).cause == 0:
            env = decode(payload)
            env = Envelope(env.ts_ns, env.src, 0, env.ev)
        else:
            env = Envelope(renv.ts_ns, renv.src, renv.cause, renv.ev)
        if encode(env) != payload:
            raise RuntimeError(f"bench replay: floor pass differs at seq {rec.seq}")
        n += 1
    return n


def run(quick: bool = False, *, cache_dir: str | Path | None = None) -> list[Result]:
    from replay.verify import verify

    records = QUICK_RECORDS if quick else FULL_RECORDS
    cache = Path(cache_dir) if cache_dir is not None else ROOT / "artifacts" / "bench"
    jdir, meta, fresh = cached_journal(cache, records, log=_log)
    res = verify(jdir)
    if not res.ok and not fresh:  # e.g. a core change the fingerprint did not see: record it again
        shutil.rmtree(jdir.parent)
        jdir, meta, fresh = cached_journal(cache, records, log=_log)
        res = verify(jdir)
    if not res.ok or res.notes:
        why = res.mismatch.reason if res.mismatch else "; ".join(res.notes)
        seq = res.mismatch.seq if res.mismatch else "-"
        raise RuntimeError(f"bench replay: the generated journal does not verify (seq {seq}): {why}")
    n = res.records
    for p in jdir.glob("seg-*"):  # page cache warm for both sides alike
        p.read_bytes()
    box: dict[str, int] = {}

    def verify_once() -> None:
        r = verify(jdir)
        if not r.ok:
            raise RuntimeError(f"bench replay: verify failed: {r.mismatch}")
        box["n"] = r.records

    def decode_once() -> None:
        box["d"] = decode_only(jdir)

    repeats = 1 if quick else 2
    t_verify, t_decode = best_of_pair(verify_once, decode_once, repeats, clock=_cpu)
    if box["n"] != n or box["d"] != n:
        raise RuntimeError(f"bench replay: record counts differ ({n}, {box['n']}, {box['d']})")
    envs = load_outputs(jdir)
    t_floor = min(_timed(lambda: box.__setitem__("f", verify_floor(jdir, envs))) for _ in range(repeats))
    if box["f"] != n:
        raise RuntimeError(f"bench replay: the floor pass read {box['f']} records of {n}")
    size = sum(p.stat().st_size for p in jdir.glob("seg-*"))
    how = (f"recorded now at {meta['record_rate']:,} records/s" if fresh else "cached")
    return [
        Result("replay.verify", round(n / t_verify), "records/s", round(n / t_decode), None, 200_000,
               f"{n:,} records ({res.inputs:,} inputs, {meta['frames']:,} feed frames; journal {how}); "
               f"verify (full core re-run + byte compare) vs decode-only pass; CPU time, best of {repeats}"),
        Result("replay.verify_floor", round(n / t_floor), "records/s", round(n / t_decode), None, None,
               "verify's own steps with actors that cost nothing (read + checks, input decode, envelope + encode "
               "+ compare of every record): the ceiling for any core; vs the decode-only pass"),
        Result("replay.core_us_per_record", round((t_verify - t_floor) / n * 1e6, 2), "us", None, None, None,
               "what the core actors add per record in verify (verify minus floor)"),
        Result("replay.bytes_per_record", round(size / n, 1), "bytes/record", None, None, None,
               "the paper-sim journal on disk, headers included"),
    ]


def _timed(fn) -> float:
    t = _cpu()
    fn()
    return _cpu() - t


def main(argv: list[str] | None = None) -> int:
    return standalone(run, argv, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
