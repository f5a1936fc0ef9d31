"""Session and control events: run start/end, clock ticks, operator signals, kill switch, trading state."""
from __future__ import annotations

from typing import Literal

from events.base import Event, Seq
from events.params import CoreParams

Mode = Literal["prove", "shadow", "paper", "live", "preflight"]
TradingStateName = Literal["ACTIVE", "REDUCING", "HALTED"]
KillReason = Literal[
    "feed_stale",
    "book_invalid",
    "error_rate",
    "position_limit",
    "loss_limit",
    "daily_loss",
    "operator_stop",
    "preflight_failed",
    "geoblocked",
    "heartbeat_failed",
    "journal_failed",
    "internal_error",
    "unknown_order",
    "prior_halt",
]


class RunStarted(Event, tag="run"):
    """First record of every journal. Carries everything the core needs to be rebuilt in replay."""

    run_id: str
    mode: Mode
    version: str
    seed: int
    config_hash: str
    """sha256 of the canonical JSON of the whole (secret-free) application config."""
    params: CoreParams
    prior_halt: str = ""
    """Non-empty when an earlier run of this data directory ended halted: the halt stays latched."""


class RunEnded(Event, tag="end"):
    """Last record of a cleanly stopped run."""

    reason: str


class Tick(Event, tag="tk"):
    """A clock tick from the clock edge. "Now" is the envelope's ``ts_ns``; the core has no other clock."""


class OperatorStop(Event, tag="op"):
    """The operator asked to stop (Ctrl-C, SIGTERM, Stop.command). Trips the kill switch, then the run ends."""

    reason: str = "operator stop"


class KillSwitch(Event, tag="ks"):
    """Trading is halted for ``reason``: from now on only cancels pass, and every open order is cancelled.

    Latched: it stays tripped until the operator starts a new run (and a halt is carried into it as
    ``RunStarted.prior_halt``).
    """

    reason: KillReason
    detail: str = ""


class TradingState(Event, tag="st"):
    """The risk gate's trading state changed."""

    state: TradingStateName
    reason: str = ""


class JournalRecovered(Event, tag="jr"):
    """Opening the journal cut a torn tail. Recorded so the loss is visible in the run's own history."""

    dropped_bytes: int
    last_seq: Seq
    detail: str = ""


class GuardViolation(Event, tag="gv"):
    """A sink was handed something it must refuse (e.g. an order without a risk approval)."""

    seq: Seq
    detail: str
