"""Command line for the sandbox exchange: `sandbox.cli.main(argv) -> int` (wired as `pmm sandbox ...`).

Prints its URLs, then serves until Ctrl-C / SIGTERM (exit code 0). The last line printed at start is
``READY {json}`` with the URLs, seed, scenario and token ids, for scripts that start it as a subprocess.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

import trio

from .faults import ORDER_FAULTS, WS_FAULTS
from .scenarios import SCENARIOS
from .server import open_sandbox
from .testkeys import TEST_ADDRESS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pmm sandbox",
        description="Sandbox exchange: Polymarket's market-data wire protocol on 127.0.0.1, synthetic seeded markets.",
    )
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default 0 = pick a free one)")
    p.add_argument("--seed", type=int, default=1, help="seed of the synthetic markets (default 1)")
    p.add_argument(
        "--scenario", default="calm", choices=sorted(SCENARIOS), help="scenario name (default calm)"
    )
    p.add_argument(
        "--geoblock",
        default="allowed",
        choices=("allowed", "blocked", "down"),
        help="what /api/geoblock answers (default allowed)",
    )
    p.add_argument(
        "--steps-per-second",
        type=float,
        default=None,
        help="simulator steps per second (default: the scenario's; 0 = only POST /_sandbox/step)",
    )
    p.add_argument(
        "--playback",
        metavar="FILE",
        default=None,
        help='replay recorded frames from a JSON-lines file of {"ts_ns": int, "frame": str}',
    )
    p.add_argument("--speed", type=float, default=1.0, help="playback speed factor (default 1.0)")
    p.add_argument("--page-size", type=int, default=2, help="page size of /markets etc. (default 2)")
    p.add_argument(
        "--collateral", type=float, default=10_000.0, help="pUSD every account starts with (default 10000)"
    )
    p.add_argument(
        "--tokens", type=float, default=0.0, help="shares of every outcome token every account starts with"
    )
    p.add_argument(
        "--wall-timestamps",
        action="store_true",
        help="stamp events with the wall clock instead of deterministic sim time",
    )
    return p


async def _run(args: argparse.Namespace) -> int:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_sandbox(
            seed=args.seed,
            scenario=args.scenario,
            port=args.port,
            steps_per_second=args.steps_per_second,
            geoblock=args.geoblock,
            playback=args.playback,
            speed=args.speed,
            page_size=args.page_size,
            wall_timestamps=args.wall_timestamps,
            collateral=args.collateral,
            tokens=args.tokens,
        ) as sb:
            mode = (
                f"playback of {args.playback} (speed {args.speed})"
                if args.playback
                else (f"seed {sb.seed}, scenario {sb.scenario}, {sb.steps_per_second:g} steps/s")
            )
            print(f"pmm sandbox exchange: {mode}, {len(sb.markets)} markets, geoblock {args.geoblock}")
            for k, v in sb.urls().items():
                print(f"  {k:<14} {v}")
            for m in sb.markets:
                print(f"  market {m.condition_id}  tokens {' '.join(m.tokens)}")
            print(f"  ws faults: {', '.join(WS_FAULTS)} (POST {sb.faults_url})")
            print(
                f"  order side: test key 0x11..11 = {TEST_ADDRESS}; one-shot faults {', '.join(ORDER_FAULTS)}; "
                f"audit {sb.base_url}/_sandbox/audit"
            )
            print(
                "READY "
                + json.dumps(
                    {**sb.urls(), "seed": sb.seed, "scenario": sb.scenario, "token_ids": sb.token_ids}
                ),
                flush=True,
            )
            async for _ in signals:
                break
    print("pmm sandbox exchange: stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        return trio.run(_run, args)
    except (OSError, ValueError, BaseExceptionGroup) as e:
        leaf = _leaf(e)
        if not isinstance(leaf, (OSError, ValueError)):
            raise
        print(f"pmm sandbox: {leaf}", file=sys.stderr)
        return 1 if isinstance(leaf, OSError) else 2


def _leaf(e: BaseException) -> BaseException:
    while isinstance(e, BaseExceptionGroup) and len(e.exceptions) == 1:
        e = e.exceptions[0]
    return e


if __name__ == "__main__":
    sys.exit(main())
