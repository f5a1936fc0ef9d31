"""Latency benchmark: frame received -> order intent handed to the OS in the journal, on loopback, real clock.

A paper session (fills=sim) runs in this process against the sandbox exchange (``open_sandbox``, scenario
``busy``: 8 markets, 50 simulator steps a second) started in a child process over loopback. The session is
assembled from the same pieces, in the same order, as ``actors.session.run_session`` (market discovery over
REST, ``Journal`` + ``JournalSink``, ``Sequencer`` over ``build_core``, group commit, ``run_sequencer`` with the
resync subscriber, ``BookFetcher``, ``run_ticks``, ``MarketFeed``); only the console printer and status writer
are left out. Nothing in production code is changed: the measurement hooks are the public ``flush`` and
``on_records`` callbacks of ``run_sequencer``, the edge's ``emit`` (which stamps receipt time, as the session's
does) and the journal's ``io=`` seam (a ``FileOps`` that timestamps each ``fdatasync``). Both ends are
``time.time_ns()``.

For every input, ``records[0]`` is the input itself; an input is a *sample* when it is a ``FeedFrame`` and the
records it caused (the same ``submit``) include an ``OrderIntent``. Its latency is::

    (time the sequencer's flush() returned, i.e. the intent's bytes were handed to the OS with os.write)
    - (receipt time stamped by the feed edge when the frame came off the socket = the envelope's ts_ns)

so it covers the edge -> sequencer channel, journaling the frame, parsing it, the whole core cascade (book,
quoter, order manager, risk, simulated exchange, portfolio), encoding and the write. Rows (microseconds,
absolute: no baseline):

- ``latency.frame_to_intent_p50`` / ``_p99`` / ``_p999`` (target: p99 < 1000 us, before fsync);
- ``latency.frame_to_flush_p99``: the same for every feed frame, whether or not it led to an intent;
- ``latency.frame_to_intent_durable_p99``: up to the end of the first group-commit ``fdatasync`` that started
  after the intent was written (what a sink waiting on ``durable(seq)`` sees; the group commit runs every 5 ms).

The sandbox runs in its own process so that its simulator and broadcast work is not counted as session latency
(it would otherwise share the session's event loop and thread). Run: ``pmm bench latency`` or
``.venv/bin/python -m bench.latency [--quick]``.
"""
from __future__ import annotations

import bisect
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from bench.common import Result, standalone

ROOT = Path(__file__).resolve().parents[1]
SEED = 5
TARGET_P99_US = 1_000.0


# ---------------------------------------------------------------- the sandbox in a child process

def serve_sandbox(spec: dict[str, Any]) -> None:
    """Child process: run ``open_sandbox`` with ``spec`` and print ``READY <base_url>``; stop on stdin EOF."""
    from sandbox.scenarios import get_scenario
    from sandbox.server import open_sandbox

    scenario = get_scenario(spec.get("scenario", "busy")).with_(**spec.get("overrides", {}))

    async def main() -> None:
        async with open_sandbox(seed=int(spec.get("seed", 1)), scenario=scenario, port=0) as sb:
            print(f"READY {sb.base_url}", flush=True)
            await trio.to_thread.run_sync(sys.stdin.read)  # the parent closes our stdin (or dies)

    trio.run(main)


@asynccontextmanager
async def sandbox_child(spec: dict[str, Any], *, timeout_s: float = 30) -> AsyncIterator[str]:
    """Start ``serve_sandbox(spec)`` in a child process; yield its base URL; stop it on exit."""
    cmd = [sys.executable, "-m", "bench.latency", "--serve-sandbox", json.dumps(spec)]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = await trio.lowlevel.open_process(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(ROOT), env=env
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        seen = b""
        with trio.move_on_after(timeout_s):
            while b"READY " not in seen or not seen.split(b"READY ", 1)[1].count(b"\n"):
                chunk = await proc.stdout.receive_some(65536)
                if not chunk:
                    break
                seen += chunk
        if b"READY " not in seen:
            tail = seen.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"the sandbox child did not start: {tail[0]}")
        url = seen.split(b"READY ", 1)[1].split(b"\n", 1)[0].decode().strip()

        async def drain() -> None:
            while await proc.stdout.receive_some(65536):  # type: ignore[union-attr]
                pass

        async with trio.open_nursery() as n:
            n.start_soon(drain)
            try:
                yield url
            finally:
                n.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            try:
                await proc.stdin.aclose()
            except trio.BrokenResourceError:
                pass
            with trio.move_on_after(5):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


# ---------------------------------------------------------------- the instrumented session

def _percentile(sorted_values: list[int], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (q in [0, 100])."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(-(-q * len(sorted_values) // 100)) - 1))
    return float(sorted_values[k])


async def measure(
    url: str, duration_s: float, workdir: Path, *, seed: int = SEED, markets: int = 8, min_samples: int = 0,
    max_s: float = 0.0,
) -> dict[str, Any]:
    """Run the paper session against ``url`` for ``duration_s`` (longer, up to ``max_s``, until it has
    ``min_samples`` frames that led to an intent); return the raw latency samples (ns)."""
    import httpx

    from actors.edge.clock import run_ticks
    from actors.edge.feed import FeedSettings, MarketFeed
    from actors.edge.rest import BookFetcher, discover_markets
    from actors.sequencer import Sequencer, Subscriber, run_sequencer
    from actors.wiring import build_core
    from events.control import OperatorStop, RunEnded, RunStarted
    from events.market import FeedFrame, ResyncRequest
    from events.orders import OrderIntent
    from events.params import CoreParams, RiskParams
    from journal import Journal
    from journal.writer import FileOps
    from replay.journal_io import JournalSink, header_info
    from sandbox.markets import make_markets

    syncs: list[tuple[int, int]] = []  # (start, end) of each fdatasync, time.time_ns()

    class TimedOps(FileOps):
        def fdatasync(self, fd: int) -> None:
            t0 = time.time_ns()
            super().fdatasync(fd)
            syncs.append((t0, time.time_ns()))

    async with httpx.AsyncClient() as client:
        cids = [m.condition_id for m in make_markets(seed, markets)]
        mparams = await discover_markets(client, url, cids, 0)
        # generous loss limits: the bench wants the session quoting for the whole run, not halted by sim losses
        risk = RiskParams(max_loss=10_000_000_000, daily_loss=10_000_000_000, reduce_loss=10_000_000_000)
        params = CoreParams(markets=mparams, fills="sim", quoting=True, risk=risk)
        run_dir = workdir / "latency-journal"
        journal = Journal.create(
            run_dir, header_info(run_id="bench-latency", seed=seed, created_ns=time.time_ns()), io=TimedOps()
        )
        sink = JournalSink(journal)
        submitted = [0]

        class TimedSequencer(Sequencer):
            """Notes when the sequencer takes each input (splits the latency into queueing and work)."""

            def submit(self, src, ts_ns, ev):  # type: ignore[no-untyped-def]
                submitted[0] = time.time_ns()
                return super().submit(src, ts_ns, ev)

        sequencer = TimedSequencer(sink, build_core(params))
        sequencer.submit("session", time.time_ns(), RunStarted(
            run_id="bench-latency", mode="paper", version="bench", seed=seed, config_hash="bench", params=params))
        sink.flush()

        in_tx, in_rx = trio.open_memory_channel(1024)
        received: dict[int, int] = {}  # id(event) -> receipt time stamped by the edge
        flushed = [0]
        frames: list[int] = []
        intents: list[tuple[int, int, int]] = []  # (receipt ns, submit start ns, flushed ns)
        counts = {"inputs": 0, "records": 0, "intents": 0}
        elapsed = [duration_s]
        enough = trio.Event()

        async def emit(src: str, ev: object) -> None:
            ts = time.time_ns()  # as run_session's emit: the clock is read when the edge hands the event over
            received[id(ev)] = ts
            await in_tx.send((src, ts, ev))

        def flush() -> None:
            sink.flush()
            flushed[0] = time.time_ns()

        def on_records(records: list) -> None:
            env = records[0][1]
            t_rx = received.pop(id(env.ev), env.ts_ns)
            counts["inputs"] += 1
            counts["records"] += len(records)
            if type(env.ev) is FeedFrame:
                dt = flushed[0] - t_rx
                frames.append(dt)
                n_int = sum(type(e.ev) is OrderIntent for _, e in records)
                if n_int:
                    counts["intents"] += n_int
                    intents.append((t_rx, submitted[0], flushed[0]))
                    if len(intents) >= min_samples:
                        enough.set()

        resync_tx, resync_rx = trio.open_memory_channel(64)
        subs = [Subscriber("resync", lambda env: isinstance(env.ev, ResyncRequest), resync_tx)]
        tokens = [t for m in mparams for t in (m.yes_token, m.no_token)]
        try:
            async with trio.open_nursery() as core:
                core.start_soon(journal.run_group_commit)
                seq_done = trio.Event()

                async def sequencer_task(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                    try:
                        await run_sequencer(sequencer, in_rx, flush=flush, subscribers=subs,
                                            on_records=on_records, task_status=task_status)
                    finally:
                        seq_done.set()

                await core.start(sequencer_task)
                async with trio.open_nursery() as edges:
                    await edges.start(BookFetcher(url, emit, client).run, resync_rx)
                    await edges.start(run_ticks, emit, 0.25)
                    feed = MarketFeed(url.replace("http", "ws", 1) + "/ws/market", tokens, emit, seed=seed,
                                      settings=FeedSettings())
                    await edges.start(feed.run)
                    t0 = trio.current_time()
                    await trio.sleep(duration_s)
                    if len(intents) < min_samples:
                        with trio.move_on_at(t0 + max_s):
                            await enough.wait()
                    elapsed[0] = trio.current_time() - t0
                    edges.cancel_scope.cancel()
                await in_tx.send(("operator", time.time_ns(), OperatorStop(reason="bench")))
                await in_tx.send(("session", time.time_ns(), RunEnded(reason="bench")))
                await in_tx.aclose()
                await seq_done.wait()
                core.cancel_scope.cancel()
        finally:
            journal.close()
    starts = [s for s, _ in syncs]
    durable: list[int] = []
    for t_rx, _, t_fl in intents:
        i = bisect.bisect_left(starts, t_fl)
        if i < len(syncs):
            durable.append(syncs[i][1] - t_rx)
    return {
        "frames": frames,
        "intents": [t_fl - t_rx for t_rx, _, t_fl in intents],
        "queued": [t_sub - t_rx for t_rx, t_sub, _ in intents],
        "work": [t_fl - t_sub for _, t_sub, t_fl in intents],
        "durable": durable,
        "counts": counts,
        "syncs": len(syncs),
        "seconds": elapsed[0],
        "markets": len(mparams),
        "journal": str(run_dir),
    }


async def _bench(duration_s: float, workdir: Path, min_samples: int, max_s: float) -> dict[str, Any]:
    async with sandbox_child({"seed": SEED, "scenario": "busy"}) as url:
        return await measure(url, duration_s, workdir, min_samples=min_samples, max_s=max_s)


def run(quick: bool = False, *, workdir: str | Path | None = None) -> list[Result]:
    # quick: 3 s, longer (up to 20 s) on a slow machine until there are 20 samples; full: 60 s
    duration, min_samples, max_s = (3.0, 20, 20.0) if quick else (60.0, 0, 60.0)
    tmp = Path(tempfile.mkdtemp(prefix="pmm-bench-latency-", dir=workdir))
    try:
        m = trio.run(_bench, duration, tmp, min_samples, max_s)
        from replay.verify import verify  # the measured session's journal must replay like any other

        vr = verify(Path(m["journal"]))
        if not vr.ok:
            raise RuntimeError(f"bench latency: the session's journal does not verify: {vr.mismatch}")
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    lat = sorted(m["intents"])
    fr = sorted(m["frames"])
    du = sorted(m["durable"])
    if not lat:
        raise RuntimeError(f"bench latency: no feed frame led to an order intent in {m['seconds']:.0f} s "
                           f"({m['counts']})")
    us = 1e-3
    c = m["counts"]
    qd, wk = sorted(m["queued"]), sorted(m["work"])
    secs = m["seconds"]
    note = (f"{len(lat):,} frames that led to an intent, of {len(fr):,} frames in {secs:.0f} s; "
            f"{m['markets']} markets; {c['records'] / secs:,.0f} records/s; receipt (edge) -> flush (os.write)")
    split = (f"split p50/p99: edge->sequencer queueing {_percentile(qd, 50) * us:,.0f}/{_percentile(qd, 99) * us:,.0f} us, "
             f"submit (core cascade) + flush {_percentile(wk, 50) * us:,.0f}/{_percentile(wk, 99) * us:,.0f} us")
    return [
        Result("latency.frame_to_intent_p50", round(_percentile(lat, 50) * us, 1), "us", None, None, None, note),
        Result("latency.frame_to_intent_p99", round(_percentile(lat, 99) * us, 1), "us", None, None,
               TARGET_P99_US, f"before fsync; {split}"),
        Result("latency.frame_to_intent_p999", round(_percentile(lat, 99.9) * us, 1), "us", None, None, None,
               f"max {lat[-1] * us:,.0f} us" + (" (few samples: p999 is near the max)" if len(lat) < 10_000 else "")),
        Result("latency.frame_to_flush_p99", round(_percentile(fr, 99) * us, 1), "us", None, None, None,
               f"every feed frame; p50 {_percentile(fr, 50) * us:,.0f} us"),
        Result("latency.frame_to_intent_durable_p99", round(_percentile(du, 99) * us, 1), "us", None, None, None,
               f"to the end of the next group-commit fdatasync ({m['syncs']:,} syncs); "
               f"p50 {_percentile(du, 50) * us:,.0f} us"),
    ]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve-sandbox"]:
        serve_sandbox(json.loads(argv[1]))
        return 0
    return standalone(run, argv, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
