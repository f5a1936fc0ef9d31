"""Named scenarios: market dynamics parameters plus the faults a scenario switches on.

Everything here is data. `MarketSim` reads the dynamics; the server reads `steps_per_second` and the fault
settings (which seed `Faults` at start and can be changed at run time).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    n_markets: int = 4
    steps_per_second: float = 5.0  # server timer; 0 = only explicit steps
    actions_per_step: tuple[int, int] = (0, 3)  # random number of book actions per step (all markets)
    # relative weights of the random actions
    w_place: int = 8
    w_cancel: int = 3
    w_trade: int = 1
    # fair value (pips): each market starts in one of the bands (cycled by market index) and stays in it
    fair_bands: tuple[tuple[int, int], ...] = ((1500, 8500),)
    drift_pips: int = 6  # per step, uniform in [-drift, +drift]
    jump_prob: float = 0.0  # per market per step
    jump_pips: tuple[int, int] = (300, 800)
    arb_prob: float = 0.8  # chance per step that a taker sweeps levels left on the wrong side of fair
    initial_levels: tuple[int, int] = (6, 10)  # per side
    max_levels: int = 12  # per side; the worst level is cancelled beyond it
    depth_ticks: int = 8  # new orders land 1..depth ticks away from fair
    size_shares: tuple[int, int] = (5, 400)
    p_fractional_size: float = 0.3  # chance a new order has a 2-dp fractional size
    trade_shares: tuple[int, int] = (5, 300)
    p_array: float = 0.35  # chance an action's events go out as one array frame (else one object per frame)
    p_book_after_trade: float = 0.15  # chance a trade is followed by fresh `book` snapshots of both tokens
    p_wipe_side: float = 0.0  # per step: one market loses a whole side (one-sided book)
    p_one_sided_start: float = 0.0  # chance a market starts with one side empty
    # faults switched on by the scenario (see sandbox.faults.Faults for the meaning)
    ws_fault_rates: dict[str, float] = field(default_factory=dict)
    stall_seconds: float = 1.0
    http_error_rate: float = 0.0
    http_error_statuses: tuple[int, ...] = (425, 429, 500, 502, 503)
    http_delay: float = 0.0

    def with_(self, **kw: Any) -> Scenario:
        return replace(self, **kw)


_CALM = Scenario(
    name="calm", description="4 markets, 5 steps/s, gentle drift, two-sided books of about 4-8 levels a side"
)

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        _CALM,
        _CALM.with_(
            name="busy",
            description="8 markets, 50 steps/s, several actions per step: a high message rate for load tests",
            n_markets=8,
            steps_per_second=50.0,
            actions_per_step=(3, 8),
            w_trade=2,
            drift_pips=15,
            jump_prob=0.002,
        ),
        _CALM.with_(
            name="thin",
            description="thin books: few small levels, whole sides vanish (one-sided books)",
            actions_per_step=(0, 2),
            initial_levels=(0, 3),
            max_levels=3,
            size_shares=(5, 40),
            trade_shares=(5, 30),
            w_place=3,
            w_cancel=3,
            p_wipe_side=0.08,
            p_one_sided_start=0.5,
        ),
        _CALM.with_(
            name="jumpy",
            description="fair value jumps often; takers sweep the stale side so the book moves in steps",
            drift_pips=25,
            jump_prob=0.03,
            jump_pips=(400, 1500),
            fair_bands=((800, 9200),),
            w_trade=2,
        ),
        _CALM.with_(
            name="edge",
            description="prices near 0.96 / 0.04: trades cross the limits and the tick flips 0.01 <-> 0.001",
            n_markets=2,
            steps_per_second=10.0,
            actions_per_step=(1, 4),
            fair_bands=((9300, 9950), (50, 700)),
            drift_pips=20,
            jump_prob=0.04,
            jump_pips=(150, 450),
            w_trade=3,
            depth_ticks=5,
        ),
        _CALM.with_(
            name="flaky",
            description="calm market data plus malformed/truncated frames, unknown event types and out-of-range prices",
            ws_fault_rates={"malformed": 0.02, "unknown_event": 0.02, "bad_price": 0.02},
        ),
        _CALM.with_(
            name="drops",
            description="calm market data; market sockets are closed by the server now and then",
            ws_fault_rates={"drop": 0.01},
        ),
        _CALM.with_(
            name="stalls",
            description="calm market data; sockets stall for 2 s (everything buffered) then burst",
            ws_fault_rates={"stall": 0.02},
            stall_seconds=2.0,
        ),
        _CALM.with_(
            name="halfopen",
            description="calm market data; sockets occasionally go half-open (silent, no PONG) until reconnect",
            ws_fault_rates={"half_open": 0.005},
        ),
        _CALM.with_(
            name="http_errors",
            description="calm market data; 20% of REST calls fail with 425/429 (Retry-After)/5xx",
            http_error_rate=0.2,
        ),
        _CALM.with_(
            name="slow_http",
            description="calm market data; every REST call is delayed by 1.5 s",
            http_delay=1.5,
        ),
        _CALM.with_(
            name="chaos",
            description="busy-ish market with every fault at a low rate",
            n_markets=6,
            steps_per_second=20.0,
            actions_per_step=(1, 5),
            jump_prob=0.01,
            ws_fault_rates={
                "malformed": 0.005,
                "unknown_event": 0.005,
                "bad_price": 0.005,
                "drop": 0.002,
                "stall": 0.002,
                "half_open": 0.001,
            },
            http_error_rate=0.05,
        ),
    )
}


def get_scenario(name: str | Scenario) -> Scenario:
    if isinstance(name, Scenario):
        return name
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
