"""Scale benchmark: memory and CPU of a shadow session subscribed to 1, 10 and 100 markets.

For each market count N a sandbox exchange with N markets runs in one child process (``open_sandbox`` with the
``calm`` dynamics, ``n_markets=N`` and order flow scaled with N: 20 simulator steps a second, 0..N book actions a
step, about 10 actions and 10 frames per market per second), and ``actors.session.run_session(mode="shadow")`` runs unchanged in
another child process, subscribed to all N markets (by condition id). After a warm-up the session's process
measures, over a fixed window:

- ``scale.rss_<N>``: peak resident memory of the session process (``VmHWM`` from ``/proc/self/status``, or
  ``ru_maxrss``), in MB. Target for 100 markets: < 200 MB.
- ``scale.cpu_<N>``: CPU time it used in the window (user + system, ``resource.getrusage``) over the window's
  wall time, in % of one core. Target for 100 markets: < 50 %.

No baseline (the note gives the RSS of the same interpreter with pmm imported, before the session starts, and
the market-data rate the session handled). ``--quick`` runs 1 and 10 markets for a few seconds.
Run: ``pmm bench scale`` or ``.venv/bin/python -m bench.scale [--quick]``.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from bench.common import Result, standalone
from bench.latency import ROOT, sandbox_child

SEED = 3
RSS_TARGET_MB = 200.0
CPU_TARGET_PCT = 50.0


def sandbox_spec(n_markets: int) -> dict[str, Any]:
    return {
        "seed": SEED,
        "scenario": "calm",
        "overrides": {"name": f"scale-{n_markets}", "n_markets": n_markets, "steps_per_second": 20.0,
                      "actions_per_step": [0, n_markets]},
    }


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _rss_mb() -> float:
    kb = _status_kb("VmRSS")
    return (kb or 0) / 1024


def _peak_mb() -> float:
    kb = _status_kb("VmHWM")
    if kb is None:  # not Linux: ru_maxrss is KiB on Linux, bytes on macOS
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        kb = kb // 1024 if sys.platform == "darwin" else kb
    return kb / 1024


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ---------------------------------------------------------------- the measured process

def child(url: str, n_markets: int, warmup_s: float, window_s: float) -> dict[str, Any]:
    """Run a shadow session against ``url`` and measure this process. Returns the figures."""
    from actors.session import endpoints_for, run_session
    from pmm.config import AppConfig, MarketSelector
    from sandbox.markets import make_markets

    idle_mb = _rss_mb()
    tmp = Path(tempfile.mkdtemp(prefix="pmm-bench-scale-"))
    cids = [m.condition_id for m in make_markets(SEED, n_markets)]
    cfg = AppConfig(mode="shadow", markets=tuple(MarketSelector(condition_id=c) for c in cids),
                    journal_dir=str(tmp / "journals"), status_file=str(tmp / "status.json"), seed=1)
    out: dict[str, Any] = {}

    async def main() -> None:
        stop = trio.Event()
        box: dict[str, Any] = {}

        async def session() -> None:
            box["res"] = await run_session(cfg, mode="shadow", endpoints=endpoints_for(url, sandbox=True),
                                           duration_s=None, journal_root=tmp / "journals", out=lambda _: None,
                                           stop=stop, handle_signals=False)

        async with trio.open_nursery() as n:
            n.start_soon(session)
            await trio.sleep(warmup_s)
            c0, t0 = _cpu_s(), time.perf_counter()
            await trio.sleep(window_s)
            c1, t1 = _cpu_s(), time.perf_counter()
            out.update(cpu_pct=100 * (c1 - c0) / (t1 - t0), rss_mb=_rss_mb(), peak_mb=_peak_mb())
            stop.set()
        stats = box["res"].stats
        out.update(frames=stats.frames, last_seq=stats.last_seq, parse_errors=stats.parse_errors,
                   markets=n_markets, idle_mb=idle_mb, seconds=warmup_s + window_s)

    try:
        trio.run(main)
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return out


# ---------------------------------------------------------------- the parent

async def _one(n_markets: int, warmup_s: float, window_s: float) -> dict[str, Any]:
    async with sandbox_child(sandbox_spec(n_markets)) as url:
        cmd = [sys.executable, "-m", "bench.scale", "--child", url, str(n_markets), str(warmup_s), str(window_s)]
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        proc = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, check=False, cwd=str(ROOT),
                                      env=env, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = (proc.stderr or b"").decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"bench scale: the {n_markets}-market session failed: {tail[0]}")
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def run(quick: bool = False) -> list[Result]:
    counts = (1, 10) if quick else (1, 10, 100)
    warmup, window = (1.0, 2.0) if quick else (3.0, 10.0)
    results: list[Result] = []
    for n in counts:
        m = trio.run(_one, n, warmup, window)
        rate = m["last_seq"] / m["seconds"]
        results.append(Result(
            f"scale.rss_{n}", round(m["peak_mb"], 1), "MB", None, None, RSS_TARGET_MB if n == 100 else None,
            f"{n} market(s), shadow: peak RSS (VmHWM); {m['rss_mb']:.0f} MB at the end of the window, "
            f"{m['idle_mb']:.0f} MB with pmm imported before the session"))
        results.append(Result(
            f"scale.cpu_{n}", round(m["cpu_pct"], 1), "% core", None, None, CPU_TARGET_PCT if n == 100 else None,
            f"user+system CPU over a {window:g} s window after {warmup:g} s; {m['frames'] / m['seconds']:,.0f} "
            f"frames/s, {rate:,.0f} records/s journaled"))
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        url, n, warmup, window = argv[1], int(argv[2]), float(argv[3]), float(argv[4])
        print(json.dumps(child(url, n, warmup, window)), flush=True)
        return 0
    return standalone(run, argv, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
