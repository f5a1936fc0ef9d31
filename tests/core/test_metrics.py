"""Session metrics: time at top of book and distance from mid, integrated over event time."""
from __future__ import annotations

from actors.core.metrics import MetricsActor
from events import Envelope
from events.control import RunStarted, Tick
from events.market import BookChanged, FeedStatus
from events.orders import OrderIntent, OrderState
from events.paper import QuoteQuality, SessionMetrics
from events.params import CoreParams

SEC = 10**9


def run(script):
    m = MetricsActor(CoreParams(), window_ns=60 * SEC)
    out = []
    for i, (t, ev) in enumerate(script, 1):
        out += m.step(i, Envelope(ts_ns=t, src="x", cause=0, ev=ev))
    return out


def book(bid: int, ask: int) -> BookChanged:
    return BookChanged(token_id="Y", epoch=0, valid=True, best_bid=bid, bid_size=1, best_ask=ask, ask_size=1, tick=10_000)


def test_order_at_top_half_the_time_and_two_ticks_from_mid_then_reported() -> None:
    out = run([
        (0, RunStarted(run_id="r", mode="prove", version="0", seed=0, config_hash="", params=CoreParams())),
        (0, FeedStatus(conn=1, state="connected")),
        (0, book(480_000, 520_000)),
        (0, OrderIntent(client_id="a", condition_id="c", token_id="Y", side="BUY", price=480_000, size=1)),
        (0, OrderState(client_id="a", state="live")),
        (30 * SEC, book(490_000, 530_000)),   # someone bids above us: no longer at top, 3 ticks from mid 0.51
        (60 * SEC, Tick()),
    ])
    q = next(e for e in out if isinstance(e, QuoteQuality))
    assert (q.token_id, q.side, q.resting_ns, q.at_top_ppm) == ("Y", "BUY", 60 * SEC, 500_000)
    assert q.mean_distance_ticks_x100 == 250  # 2 ticks for 30 s, 3 ticks for 30 s
    s = next(e for e in out if isinstance(e, SessionMetrics))
    assert s.uptime_ns == 60 * SEC and s.connected_ns == 60 * SEC and s.reconnects == 0


def test_no_resting_order_then_no_quote_quality_and_reconnects_counted() -> None:
    out = run([
        (0, RunStarted(run_id="r", mode="prove", version="0", seed=0, config_hash="", params=CoreParams())),
        (SEC, FeedStatus(conn=2, state="connecting")),
        (61 * SEC, Tick()),
    ])
    assert not any(isinstance(e, QuoteQuality) for e in out)
    s = next(e for e in out if isinstance(e, SessionMetrics))
    assert s.reconnects == 1 and s.reconnects_per_hour_x100 == 1 * 3600 * 100 // 61
