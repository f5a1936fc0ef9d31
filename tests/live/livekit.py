"""Helpers for the live tests: a live config for a sandbox, running a live session in-process, reading journals.
(No function here starts with ``test``.)"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from actors.edge.clock import TrioClock
from actors.edge.exchange import LiveEndpoints, live_endpoints
from actors.live_session import run_live_session
from events.base import MICRO
from events.params import QuoterParams, RiskParams
from journal import JournalReader
from pmm.config import AppConfig, LiveConfig, MarketSelector
from replay.journal_io import read_envelopes
from sandbox.testkeys import TEST_PRIVATE_KEY

TINY_RISK = RiskParams(
    max_order_size=20 * MICRO,
    max_order_notional=10 * MICRO,
    max_position=50 * MICRO,
    max_total_notional=50 * MICRO,
    daily_loss=20 * MICRO,
    max_loss=40 * MICRO,
)
ENV = {"PMM_PRIVATE_KEY": TEST_PRIVATE_KEY}


def live_cfg(tmp_path: Path, sb: Any, *, market: int = 0, **kw: Any) -> AppConfig:
    m = sb.markets[market]
    live = kw.pop("live", LiveConfig(enabled=True, state_dir=str(tmp_path / "state")))
    base = dict(
        mode="live",
        markets=(MarketSelector(condition_id=m.condition_id, yes_token=m.yes_token, no_token=m.no_token),),
        risk=TINY_RISK,
        quoter=QuoterParams(size=5 * MICRO),
        status_file=str(tmp_path / "status.json"),
        journal_dir=str(tmp_path / "journals"),
        seed=7,
        live=live,
    )
    base.update(kw)
    return AppConfig(**base)


def endpoints(sb: Any) -> LiveEndpoints:
    ep = live_endpoints(sb.base_url)
    assert ep is not None
    return ep


async def run_live(tmp_path: Path, sb: Any, cfg: AppConfig | None = None, *, duration: float | None = 30.0,
                   env: dict[str, str] | None = None, stop: Any = None, **kw: Any):
    lines: list[str] = []
    res = await run_live_session(
        cfg or live_cfg(tmp_path, sb), endpoints=endpoints(sb), duration_s=duration,
        journal_root=tmp_path / "journals", clock=TrioClock(), out=lines.append, handle_signals=False,
        env=ENV if env is None else env, stop=stop, **kw,
    )
    return res, lines


def records(run_dir: Path) -> list[tuple[int, Any]]:
    return [(seq, env) for seq, _, env in read_envelopes(JournalReader(run_dir))]


def events(run_dir: Path, kind: type | tuple[type, ...]) -> list[Any]:
    return [env.ev for _, env in records(run_dir) if isinstance(env.ev, kind)]
