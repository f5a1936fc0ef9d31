"""The application config (``config.json``): validated at load, one clear line per problem.

The core's part (markets, quoter, orders, risk, sim) is ``events.params``; it is journaled in ``RunStarted``.
The rest (endpoints, paths, timings of the edges) never changes what the core decides and is not journaled,
except as part of the config hash. Credentials are never part of this file.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from events.params import OrderParams, QuoterParams, RiskParams, SimParams

Seconds = Annotated[float, Meta(gt=0, le=7 * 24 * 3600)]


class _Cfg(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class ExchangeConfig(_Cfg):
    """Where the exchange is. Empty ``rest_url``: start the built-in sandbox exchange on loopback."""

    rest_url: str = ""
    market_ws_url: str = ""
    user_ws_url: str = ""
    geoblock_url: str = ""
    sandbox_seed: int = 1
    sandbox_scenario: str = "calm"


class MarketSelector(_Cfg):
    """A market by condition id (tokens looked up from the exchange) or by its YES/NO token ids."""

    condition_id: str = ""
    yes_token: str = ""
    no_token: str = ""


class FeedConfig(_Cfg):
    ping_interval_s: Seconds = 10.0
    silence_timeout_s: Seconds = 30.0
    connect_timeout_s: Seconds = 10.0
    backoff_initial_s: Seconds = 0.5
    backoff_max_s: Seconds = 30.0


class AppConfig(_Cfg):
    mode: Literal["shadow", "paper", "live"] = "paper"
    fills: Literal["none", "sim"] = "sim"
    """Paper mode only: none = record would-place/would-cancel; sim = simulated fills against the live book."""
    exchange: ExchangeConfig = ExchangeConfig()
    markets: tuple[MarketSelector, ...] = ()
    """Empty: the first ``auto_markets`` reward-eligible markets the exchange lists (sandbox only)."""
    auto_markets: Annotated[int, Meta(ge=1, le=3)] = 2
    quoter: QuoterParams = QuoterParams()
    orders: OrderParams = OrderParams()
    risk: RiskParams = RiskParams()
    sim: SimParams = SimParams()
    feed: FeedConfig = FeedConfig()
    journal_dir: str = "journals"
    status_file: str = "status.json"
    """Rewritten atomically every second while a session runs (read it with `pmm status`)."""
    publish_dir: str = ""
    """If set: a folder (e.g. one synced to an observer) that gets a copy of status.json and an append-only
    summary.jsonl (one line a minute). The trading process only writes there, never reads."""
    tick_ms: Annotated[int, Meta(ge=10, le=5000)] = 250
    seed: Annotated[int, Meta(ge=0, le=2**63 - 1)] = 0
    """Seed of the edges' randomness (reconnect jitter). 0: drawn at start; journaled either way."""


class ConfigError(ValueError):
    """The config cannot be used. The message is one line: file, field path, what is wrong."""


def load_config(path: Path | None) -> AppConfig:
    """Load and validate ``path``; ``None`` gives the safe defaults (paper, sandbox, tiny caps)."""
    if path is None:
        return AppConfig()
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file (create one with `pmm config init`)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return msgspec.json.decode(raw, type=AppConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None


def config_hash(cfg: AppConfig) -> str:
    return hashlib.sha256(msgspec.json.encode(cfg, order="sorted")).hexdigest()
