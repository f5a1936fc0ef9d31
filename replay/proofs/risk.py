"""Risk proofs: every kill-switch trigger, the main reject codes, that a rejected order never reaches a sink, and
that an order in an unknown state blocks its token until resolved. All through the real core (``ctx.session``).

Market data enters as real Polymarket frames (``FeedFrame``) so the real book actor makes the ``BookChanged`` the
gate judges against. Where a proof needs the venue, it runs with ``fills="live"`` (no core executor) and scripts
the venue's ``ExchangeReply``/``Fill`` inputs; with ``fills="none"`` the paper recorder answers, and its cancel
replies show that a ``CancelAll`` really cancels every open order. Where the real quoter would never ask for the
faulty order (a fat-finger price, an unlisted token), a scripted ``DesiredQuotes`` input plays a faulty quoter.

After every kill the proofs keep the market moving (frames, ticks, book changes) and check that not one place is
approved: a kill switch that keeps ordering after it tripped is the classic failure (peers.md §8.9).
"""
from __future__ import annotations

import msgspec

from actors.sink.gate import ApprovedActions
from events.base import MICRO
from events.control import KillSwitch, OperatorStop, Tick, TradingState
from events.market import BookChanged, FeedFrame, FeedStatus
from events.orders import (
    CancelAll,
    CancelIntent,
    DesiredQuotes,
    ExchangeReply,
    Fill,
    OrderIntent,
    OrderState,
    Position,
    Quote,
    RiskApproved,
    RiskReject,
)
from events.params import CoreParams, OrderParams, QuoterParams, RiskParams
from replay.harness import ScriptedSession
from replay.proofs import ProofContext, expect, proof
from replay.scripts import MARKET as REWARD_MARKET
from replay.scripts import STANDARD_ASKS, STANDARD_BIDS, pair_snapshot

MARKET = msgspec.structs.replace(REWARD_MARKET, reward_min_size=0, reward_max_spread=0)
"""The standard test market without liquidity rewards, so quotes have exactly the quoter's size."""
SEC = 10**9
S = MICRO
LOW_BIDS = (("0.25", "100"), ("0.26", "80"), ("0.27", "60"))
LOW_ASKS = (("0.33", "100"), ("0.32", "80"), ("0.31", "60"))


# ---------------------------------------------------------------------------------------------- helpers
def _params(fills: str = "none", **risk: int) -> CoreParams:
    return CoreParams(markets=(MARKET,), fills=fills, risk=RiskParams(**risk))  # type: ignore[arg-type]


def _open(s: ScriptedSession, *, conn: int = 1) -> None:
    """Connect, snapshot both tokens, let the quoter quote."""
    s.at(SEC, "feed", FeedStatus(conn=conn, state="connected"))
    s.at(1000, "feed", FeedFrame(conn=conn, text=pair_snapshot(MARKET, STANDARD_BIDS, STANDARD_ASKS)))
    s.at(SEC // 10, "clock", Tick())


def _alive(s: ScriptedSession, seconds: int, *, conn: int = 1) -> None:
    """Keep the connection alive (PONG every half second) and the clock ticking, with no book change."""
    for _ in range(2 * seconds):
        s.at(SEC // 2, "feed", FeedFrame(conn=conn, text="PONG"))
        s.at(0, "clock", Tick())


def _intent_at(s: ScriptedSession) -> dict[int, OrderIntent | CancelIntent]:
    return {seq: env.ev for seq, env in s.records if isinstance(env.ev, (OrderIntent, CancelIntent))}


def _approved_places(s: ScriptedSession, *, after: int = 0) -> list[RiskApproved]:
    intents = _intent_at(s)
    return [ev for ev in s.events(RiskApproved, after=after) if isinstance(intents.get(ev.intent_seq), OrderIntent)]


def _live_client_ids(s: ScriptedSession, *, before: int) -> list[str]:
    """Orders the venue (paper recorder) acknowledged and did not cancel before ``before``."""
    live: dict[str, None] = {}
    for seq, env in s.records:
        if seq >= before:
            break
        ev = env.ev
        if isinstance(ev, ExchangeReply) and ev.op == "place" and ev.ok:
            live[ev.client_id] = None
        elif isinstance(ev, ExchangeReply) and ev.op == "cancel" and ev.ok:
            live.pop(ev.client_id, None)
    return list(live)


def _kill_seq(s: ScriptedSession, reason: str) -> int:
    kills = [(seq, env) for seq, env in s.find(KillSwitch)]
    expect(kills, f"no KillSwitch at all (expected {reason})")
    seq, env = kills[0]
    expect(env.ev.reason == reason, f"first KillSwitch is {env.ev.reason!r} ({env.ev.detail}), expected {reason!r}")
    return seq


def _after_kill(s: ScriptedSession, kill_seq: int, *, reason: str) -> str:
    """The kill's consequences: HALTED + one CancelAll, every order live at the kill cancelled (when the paper
    recorder is the venue), nothing approved afterwards, ever."""
    live = _live_client_ids(s, before=kill_seq) if s.params.fills == "none" else None
    states = [ev for ev in s.events(TradingState, after=kill_seq - 1) if ev.state == "HALTED"]
    expect(len(states) == 1 and states[0].reason == reason, f"expected one TradingState(HALTED, {reason}): {states}")
    cancel_alls = s.events(CancelAll)
    expect(len(cancel_alls) == 1 and cancel_alls[0].reason == reason, f"expected one CancelAll({reason}): {cancel_alls}")
    risk_kills = [env for _, env in s.find(KillSwitch) if env.src == "risk"]
    expect(len(risk_kills) <= 1, f"the gate announced {len(risk_kills)} kills: the latch leaked")
    if live is not None:
        cancelled = {ev.client_id for ev in s.events(ExchangeReply, after=kill_seq) if ev.op == "cancel" and ev.ok}
        missing = [c for c in live if c not in cancelled]
        expect(not missing, f"orders still open after CancelAll: {missing}")
    # The world goes on: the book moves, frames and ticks keep coming, a quote is desired. Nothing may be placed.
    s.at(SEC, "feed", FeedFrame(conn=9, text=pair_snapshot(MARKET, LOW_BIDS, LOW_ASKS)))
    s.at(0, "feed", FeedStatus(conn=9, state="connected"))
    s.at(SEC, "feed", FeedFrame(conn=9, text=pair_snapshot(MARKET, LOW_BIDS, LOW_ASKS, ts=5)))
    _alive(s, 3, conn=9)
    s.at(0, "test", DesiredQuotes(condition_id=MARKET.condition_id, fair=290_000, quotes=(
        Quote(token_id=MARKET.yes_token, side="BUY", price=280_000, size=10 * S),)))
    approved = _approved_places(s, after=kill_seq)
    expect(not approved, f"{len(approved)} place(s) approved after the kill switch: {approved}")
    places_after = [ev for ev in s.events(OrderIntent, after=kill_seq)]
    rejected_after = [ev for ev in s.events(RiskReject, after=kill_seq) if ev.code == "halted"]
    expect(len(rejected_after) >= len(places_after), "a place intent after the kill was not refused as halted")
    venue = f"{len(live)} open orders cancelled by the paper venue" if live is not None else "no core venue (live)"
    return f"KillSwitch({reason}) -> HALTED -> CancelAll; {venue}; 0 places approved after"


def _decision(s: ScriptedSession, intent_seq: int) -> RiskApproved | RiskReject | None:
    for ev in s.events(RiskApproved) + s.events(RiskReject):  # type: ignore[operator]
        if ev.intent_seq == intent_seq:
            return ev
    return None


def _rejects(s: ScriptedSession, code: str) -> list[tuple[int, RiskReject]]:
    """Rejects with ``code``, each checked: its intent is an OrderIntent and no RiskApproved names it."""
    intents = _intent_at(s)
    approved = {ev.intent_seq for ev in s.events(RiskApproved)}
    out = []
    for seq, env in s.find(RiskReject):
        ev = env.ev
        if ev.code != code:
            continue
        expect(isinstance(intents.get(ev.intent_seq), OrderIntent), f"reject at {seq} names no order intent")
        expect(ev.intent_seq not in approved, f"intent {ev.intent_seq} was both rejected and approved")
        out.append((seq, ev))
    expect(out, f"no RiskReject with code {code!r}; codes seen: {sorted({e.code for e in s.events(RiskReject)})}")
    return out


def _no_rejected_reaches_sink(s: ScriptedSession) -> int:
    gate = ApprovedActions()
    places = 0
    rejected = {ev.intent_seq for ev in s.events(RiskReject)}
    rejected_ids = {ev.client_id for ev in s.events(RiskReject) if isinstance(_intent_at(s).get(ev.intent_seq),
                                                                                OrderIntent)}
    for seq, env in s.records:
        action = gate.feed(seq, env)
        if action is not None and action[0] == "place":
            places += 1
            expect(action[1] not in rejected, f"rejected intent {action[1]} became a place action")
    expect(not gate.violations, f"the structural gate saw violations: {gate.violations}")
    answered = [ev.client_id for ev in s.events(ExchangeReply) if ev.op == "place" and ev.client_id in rejected_ids]
    expect(not answered, f"the executor answered rejected orders: {answered}")
    return places


# ---------------------------------------------------------------------------------------------- kill switches
@proof("kill_feed_stale")
def kill_feed_stale(ctx: ProofContext) -> str:
    s = ctx.session(_params(feed_stale_ns=30 * SEC))
    _open(s)
    last_frame = max(env.ts_ns for _, env in s.find(FeedFrame))
    expect(_live_client_ids(s, before=10**9), "no order was live before the feed went quiet: nothing to prove")
    for k in range(1, 31):  # ticks only: the connection says nothing at all, up to exactly the limit
        s.send("clock", last_frame + k * SEC, Tick())
    expect(not s.events(KillSwitch), "killed at exactly feed_stale_ns: the limit is 'more than'")
    seq = s.send("clock", last_frame + 30 * SEC + 1, Tick())[0][0]
    kill = _kill_seq(s, "feed_stale")
    expect(kill > seq, "the kill came before the tick that crossed the limit")
    return "silent 30 s + 1 ns (30 s exactly: no kill): " + _after_kill(s, kill, reason="feed_stale")


@proof("kill_book_invalid")
def kill_book_invalid(ctx: ProofContext) -> str:
    s = ctx.session(_params(book_invalid_ns=10 * SEC))
    _open(s)
    expect(_live_client_ids(s, before=10**9), "no order was live: nothing to prove")
    # The socket drops and comes back, but the new connection never sends its snapshot: the connection is alive
    # (PONGs), the books are not. A quiet-but-alive feed must not look healthy forever.
    since = s.at(SEC // 10, "feed", FeedStatus(conn=1, state="disconnected"))[0][1].ts_ns
    expect(any(not env.ev.valid for _, env in s.find(BookChanged)), "the disconnect did not invalidate the books")
    s.at(SEC // 10, "feed", FeedStatus(conn=2, state="connected"))
    for k in range(1, 21):
        s.send("feed", since + k * SEC // 2, FeedFrame(conn=2, text="PONG"))
    expect(not s.events(KillSwitch), "killed at exactly book_invalid_ns: the limit is 'more than'")
    s.send("clock", since + 10 * SEC + 1, Tick())
    kill = _kill_seq(s, "book_invalid")
    return "books invalid 10 s + 1 ns on a live connection: " + _after_kill(s, kill, reason="book_invalid")


@proof("kill_error_rate")
def kill_error_rate(ctx: ProofContext) -> str:
    s = ctx.session(_params("live", error_burst=3, error_window_ns=60 * SEC))
    _open(s)
    ids = [ev.client_id for ev in s.events(OrderIntent)]
    expect(len(ids) >= 2, "the quoter placed fewer than two orders")
    s.at(SEC // 10, "exchange", ExchangeReply(client_id=ids[0], op="place", ok=False, status="rejected",
                                              message="not enough balance"))
    _alive(s, 20)
    s.at(SEC // 10, "exchange", ExchangeReply(client_id=ids[1], op="place", ok=False, status="rejected",
                                              message="not enough balance"))
    _alive(s, 20)
    expect(not s.events(KillSwitch), "killed after two errors (error_burst is 3)")
    s.at(SEC // 10, "exchange", ExchangeReply(client_id="", op="cancel", ok=False, message="500"))
    kill = _kill_seq(s, "error_rate")
    return "3 failed replies within 60 s: " + _after_kill(s, kill, reason="error_rate")


@proof("kill_position_limit")
def kill_position_limit(ctx: ProofContext) -> str:
    # Worst-case gating keeps every order within the limit; only a fill nobody planned for can breach it. Here the
    # classic race: an order is cancelled (confirmed), its capacity goes to a new order which fills, and then a
    # fill of the cancelled order, matched before the cancel, is reported late.
    s = ctx.session(CoreParams(markets=(MARKET,), fills="live", risk=RiskParams(max_position=12 * S),
                               quoter=QuoterParams(size=10 * S, max_position=1000 * S)))
    _open(s)
    first = list(s.events(OrderIntent))
    a = next((ev for ev in first if ev.token_id == MARKET.yes_token), None)
    expect(a is not None, "no YES bid placed")
    for ev in first:
        s.at(SEC // 10, "exchange", ExchangeReply(client_id=ev.client_id, op="place", ok=True, status="live"))
    s.at(SEC // 10, "feed", FeedFrame(conn=1, text=pair_snapshot(MARKET, LOW_BIDS, LOW_ASKS, ts=2)))
    cancels = [ev for ev in s.events(CancelIntent) if ev.client_id == a.client_id]
    expect(cancels, "the book moved 20 cents and the order manager did not cancel the old bid")
    refused = [ev.code for ev in s.events(RiskReject)]
    expect("position_limit" in refused, "the replacement should wait: the old bid counts until its cancel is confirmed")
    for ev in s.events(CancelIntent):
        s.at(SEC // 10, "exchange", ExchangeReply(client_id=ev.client_id, op="cancel", ok=True, status="cancelled"))
    s.at(SEC // 10, "clock", Tick())
    b = [ev for ev in s.events(OrderIntent) if ev.token_id == MARKET.yes_token and ev.client_id != a.client_id]
    expect(b, "no new YES bid after the move")
    b_ok = [ev for ev in _approved_places(s) if ev.client_id == b[-1].client_id]
    expect(b_ok, f"the new bid was not approved: {_decision(s, 0)}")
    s.at(SEC // 10, "exchange", ExchangeReply(client_id=b[-1].client_id, op="place", ok=True, status="live"))
    s.at(SEC // 10, "exchange", Fill(client_id=b[-1].client_id, token_id=MARKET.yes_token, side="BUY",
                                     price=b[-1].price, size=b[-1].size, trade_id="T1"))
    expect(not s.events(KillSwitch), "killed while the position was within the limit")
    s.at(SEC // 10, "exchange", Fill(client_id=a.client_id, token_id=MARKET.yes_token, side="BUY", price=a.price,
                                     size=5 * S, trade_id="T0"))
    kill = _kill_seq(s, "position_limit")
    late = [ev for ev in s.events(OrderState) if ev.client_id == a.client_id and ev.detail.startswith("late fill")]
    expect(late, "the order manager did not record the late fill on the cancelled order")
    return "late fill of a cancelled order took YES to 15 > 12 shares: " + _after_kill(s, kill, reason="position_limit")


def _loss_session(ctx: ProofContext, **risk: int) -> ScriptedSession:
    """Buy 10 YES at the quoted bid, then the market drops 20 cents: the portfolio marks the loss."""
    s = ctx.session(CoreParams(markets=(MARKET,), fills="live", risk=RiskParams(**risk)))  # type: ignore[arg-type]
    _open(s)
    bid = next(ev for ev in s.events(OrderIntent) if ev.token_id == MARKET.yes_token)
    s.at(SEC // 10, "exchange", ExchangeReply(client_id=bid.client_id, op="place", ok=True, status="live"))
    s.at(SEC // 10, "exchange", Fill(client_id=bid.client_id, token_id=MARKET.yes_token, side="BUY", price=bid.price,
                                     size=bid.size, trade_id="T1"))
    s.at(SEC // 10, "feed", FeedFrame(conn=1, text=pair_snapshot(MARKET, LOW_BIDS, LOW_ASKS, ts=2)))
    return s


@proof("kill_loss_limit")
def kill_loss_limit(ctx: ProofContext) -> str:
    s = _loss_session(ctx, max_loss=1 * S, daily_loss=100 * S, reduce_loss=100 * S)
    kill = _kill_seq(s, "loss_limit")
    # The gate marks its own fills at the new mid, on the BookChanged itself; the portfolio's Position (one step
    # later in the same cascade) must agree that the loss is real.
    pos = [env.ev for _, env in s.find(Position)]
    expect(pos and pos[-1].mtm < -S, f"the portfolio does not see a loss beyond $1: {pos[-1:]}")
    return f"portfolio mtm {pos[-1].mtm} < -1 dollar: " + _after_kill(s, kill, reason="loss_limit")


@proof("kill_daily_loss")
def kill_daily_loss(ctx: ProofContext) -> str:
    s = _loss_session(ctx, max_loss=100 * S, daily_loss=1 * S, reduce_loss=100 * S)
    kill = _kill_seq(s, "daily_loss")
    return "PnL since the day's start < -1 dollar: " + _after_kill(s, kill, reason="daily_loss")


@proof("kill_operator_stop")
def kill_operator_stop(ctx: ProofContext) -> str:
    s = ctx.session(_params())
    _open(s)
    expect(_live_client_ids(s, before=10**9), "no order was live: nothing to prove")
    s.at(SEC, "operator", OperatorStop(reason="Stop.command"))
    kill = _kill_seq(s, "operator_stop")
    return _after_kill(s, kill, reason="operator_stop")


@proof("kill_external")
def kill_external(ctx: ProofContext) -> str:
    s = ctx.session(_params())
    _open(s)
    expect(_live_client_ids(s, before=10**9), "no order was live: nothing to prove")
    seq = s.at(SEC, "heartbeat", KillSwitch(reason="heartbeat_failed", detail="3 heartbeats unanswered"))[0][0]
    kill = _kill_seq(s, "heartbeat_failed")
    expect(kill == seq, "the edge's KillSwitch was not the first kill")
    risk_kills = [env for _, env in s.find(KillSwitch) if env.src == "risk"]
    expect(not risk_kills, "the gate re-announced an external kill")
    return "heartbeat edge KillSwitch: " + _after_kill(s, kill, reason="heartbeat_failed")


@proof("kill_internal_error")
def kill_internal_error(ctx: ProofContext) -> str:
    # The venue reports a fill one micro-share beyond an order's size: the order manager's invariant breaks, its step
    # raises, the sequencer journals KillSwitch(internal_error), and the gate halts and cancels everything.
    s = ctx.session(_params("live"))
    _open(s)
    bid = next(ev for ev in s.events(OrderIntent) if ev.token_id == MARKET.yes_token)
    s.at(SEC // 10, "exchange", ExchangeReply(client_id=bid.client_id, op="place", ok=True, status="live"))
    s.at(SEC // 10, "exchange", Fill(client_id=bid.client_id, token_id=MARKET.yes_token, side="BUY", price=bid.price,
                                     size=bid.size + 1, trade_id="T1"))
    kill = _kill_seq(s, "internal_error")
    src = s.records[kill - 1][1].src
    expect(src == "orders", f"internal_error stamped by {src!r}, expected the order manager")
    return "order manager raised on an overfill: " + _after_kill(s, kill, reason="internal_error")


@proof("kill_prior_halt_restart")
def kill_prior_halt_restart(ctx: ProofContext) -> str:
    first = ctx.session(_params(), suffix="run1")
    _open(first)
    first.at(SEC, "operator", OperatorStop())
    halt = first.events(KillSwitch)[0]
    # The next run of the same data directory starts with the halt carried over.
    s = ctx.session(_params(), suffix="run2", prior_halt=f"{halt.reason}: {halt.detail}")
    head = [type(env.ev).__name__ for _, env in s.records[:4]]
    expect(head == ["RunStarted", "KillSwitch", "TradingState", "CancelAll"],
           f"a restarted halted run must open with the kill: {head}")
    _open(s)
    _alive(s, 5)
    expect(not s.events(OrderIntent), "the order manager made place intents in a run that starts halted")
    kill = _kill_seq(s, "prior_halt")
    return "restart after operator_stop: " + _after_kill(s, kill, reason="prior_halt")


# ---------------------------------------------------------------------------------------------- rejects
def _rogue(s: ScriptedSession, *quotes: tuple[str, str, int, int], condition_id: str = MARKET.condition_id) -> int:
    """A faulty quoter asks for these quotes. Returns the seq of the DesiredQuotes input."""
    return s.at(SEC // 10, "test", DesiredQuotes(condition_id=condition_id, fair=490_000, quotes=tuple(
        Quote(token_id=t, side=side, price=p, size=z) for t, side, p, z in quotes)))[0][0]


@proof("reject_price_band")
def reject_price_band(ctx: ProofContext) -> str:
    s = ctx.session(_params(price_band=30_000))
    _open(s)
    _rogue(s, (MARKET.yes_token, "BUY", 600_000, 10 * S))  # fat finger: mid 0.49, band 0.03, ask 0.51
    (_, rj), = _rejects(s, "price_band")
    expect(_no_rejected_reaches_sink(s) > 0, "nothing at all was placed: the session proves nothing")
    return f"BUY YES 0.60 vs mid 0.49 + band 0.03: {rj.code} ({rj.detail}); never approved, never placed"


@proof("reject_size_and_notional")
def reject_size_and_notional(ctx: ProofContext) -> str:
    # The real quoter caps its own sizes at max_order_size; a faulty one does not. The gate must not care which.
    s = ctx.session(_params(max_order_size=50 * S, max_order_notional=10 * S))
    _open(s)
    _rogue(s, (MARKET.yes_token, "BUY", 470_000, 50 * S + 1))
    _rogue(s, (MARKET.yes_token, "BUY", 460_000, 50 * S))  # within size, $23 > $10
    _rogue(s, (MARKET.yes_token, "BUY", 400_000, 25 * S))  # $10 exactly: passes
    (_, size), = _rejects(s, "size_limit")
    (_, notional), = _rejects(s, "notional_limit")
    ok = [ev for ev in _approved_places(s) if _intent_at(s)[ev.intent_seq].size == 25 * S]  # type: ignore[union-attr]
    expect(len(ok) == 1, "the order at exactly the notional cap was not approved")
    _no_rejected_reaches_sink(s)
    return (f"50 shares + 1 micro-share: {size.code}; 50 x 0.46 = $23 > $10: {notional.code}; 25 x 0.40 = $10 exactly: "
            f"approved; no rejected order placed")


@proof("reject_position_limit")
def reject_position_limit(ctx: ProofContext) -> str:
    # Two 10-share levels against a 15-share per-token cap: worst case (both levels fill) is 20.
    s = ctx.session(CoreParams(markets=(MARKET,), fills="none", risk=RiskParams(max_position=15 * S),
                               quoter=QuoterParams(levels=2, size=10 * S, max_position=1000 * S)))
    _open(s)
    rejects = _rejects(s, "position_limit")
    approved = _approved_places(s)
    expect(approved, "the first level should pass")
    return f"{len(approved)} first levels approved, {len(rejects)} second levels refused (worst case 20 > 15 shares)"


@proof("reject_total_notional")
def reject_total_notional(ctx: ProofContext) -> str:
    s = ctx.session(_params(max_total_notional=6 * S))
    _open(s)
    rejects = _rejects(s, "total_notional_limit")
    return f"{len(_approved_places(s))} approved, then {len(rejects)} refused: open buys would exceed $6 in total"


@proof("reject_allowlist")
def reject_allowlist(ctx: ProofContext) -> str:
    s = ctx.session(_params())
    _open(s)
    _rogue(s, ("999", "BUY", 480_000, 10 * S), condition_id="0xdeadbeef")
    _rogue(s, (MARKET.yes_token, "BUY", 470_000, 10 * S), condition_id="0xdeadbeef")
    rejects = _rejects(s, "not_allowlisted")
    expect(len(rejects) == 2, f"expected both rogue orders refused, got {len(rejects)}")
    _no_rejected_reaches_sink(s)
    return "an unlisted token, and a listed token under another market's id: both not_allowlisted, never placed"


@proof("reject_throttle")
def reject_throttle(ctx: ProofContext) -> str:
    s = ctx.session(CoreParams(markets=(MARKET,), fills="none", risk=RiskParams(orders_per_sec=1, order_burst=2),
                               quoter=QuoterParams(levels=2, size=10 * S, max_position=1000 * S)))
    _open(s)
    rejects = _rejects(s, "throttled")
    approved = _approved_places(s)
    expect(len(approved) == 2, f"burst 2: expected exactly 2 approved, got {len(approved)}")
    _no_rejected_reaches_sink(s)
    return f"4 intents at once against a burst of 2: {len(approved)} approved, {len(rejects)} throttled, none placed"


@proof("rejected_never_reaches_sink")
def rejected_never_reaches_sink(ctx: ProofContext) -> str:
    s = ctx.session(CoreParams(markets=(MARKET,), fills="none", risk=RiskParams(max_position=15 * S, price_band=30_000),
                               quoter=QuoterParams(levels=2, size=10 * S, max_position=1000 * S)))
    _open(s)
    _rogue(s, (MARKET.yes_token, "BUY", 600_000, 10 * S), (MARKET.no_token, "BUY", 481_000, 10 * S),
           ("999", "BUY", 400_000, 10 * S))
    _alive(s, 2)
    s.at(SEC, "operator", OperatorStop())
    _rogue(s, (MARKET.yes_token, "BUY", 450_000, 10 * S))
    places = _no_rejected_reaches_sink(s)
    codes = sorted({ev.code for ev in s.events(RiskReject)})
    expect(len(codes) >= 3, f"too few kinds of reject to make the point: {codes}")
    approved = {ev.intent_seq for ev in s.events(RiskApproved)}
    rejected = {ev.intent_seq for ev in s.events(RiskReject)}
    expect(not approved & rejected, "an intent was both approved and rejected")
    expect(approved | rejected == set(_intent_at(s)), "an intent got no decision")
    return f"{len(rejected)} rejected ({', '.join(codes)}), {places} approved places; no rejected intent was acted on"


# ---------------------------------------------------------------------------------------------- unknown orders
@proof("unknown_order_blocks_token")
def unknown_order_blocks_token(ctx: ProofContext) -> str:
    s = ctx.session(CoreParams(markets=(MARKET,), fills="live", orders=OrderParams(ack_timeout_ns=2 * SEC)))
    _open(s)
    sent = {ev.token_id: ev for ev in s.events(OrderIntent)}
    expect(set(sent) == {MARKET.yes_token, MARKET.no_token}, f"expected a bid on each token: {sorted(sent)}")
    yes = sent[MARKET.yes_token]
    s.at(SEC // 10, "exchange", ExchangeReply(client_id=sent[MARKET.no_token].client_id, op="place", ok=True,
                                              status="live"))
    _alive(s, 3)  # no answer for the YES bid: it may or may not rest at the venue
    unknown = [ev for ev in s.events(OrderState) if ev.client_id == yes.client_id and ev.state == "unknown"]
    expect(unknown, "no reply within ack_timeout_ns and the order is not unknown")
    mark = s.records[-1][0]
    s.at(SEC // 10, "feed", FeedFrame(conn=1, text=pair_snapshot(MARKET, LOW_BIDS, LOW_ASKS, ts=2)))
    _alive(s, 2)
    blocked = [ev for ev in s.events(OrderIntent, after=mark) if ev.token_id == MARKET.yes_token]
    expect(not blocked, f"an order was placed on a token with an unknown order: {blocked}")
    others = [ev for ev in s.events(OrderIntent, after=mark) if ev.token_id == MARKET.no_token]
    expect(others, "the other token should still be quoted")
    cancel = [ev for ev in s.events(CancelIntent, after=mark) if ev.client_id == yes.client_id]
    expect(cancel, "the unknown order was not cancelled when the quote moved away from it")
    # The venue answers at last: the cancels went through. The token is free again.
    mark = s.records[-1][0]
    for ev in s.events(CancelIntent):
        s.at(SEC // 10, "exchange", ExchangeReply(client_id=ev.client_id, op="cancel", ok=True, status="cancelled"))
    s.at(SEC // 2, "clock", Tick())
    resumed = [ev for ev in s.events(OrderIntent, after=mark) if ev.token_id == MARKET.yes_token]
    expect(resumed, "the token stayed blocked after the unknown order was resolved")
    ok = [ev for ev in _approved_places(s, after=mark) if ev.client_id == resumed[0].client_id]
    expect(ok, "the resumed order was not approved")
    return (f"{yes.client_id} unanswered > 2 s -> unknown; YES not quoted while NO was; cancel confirmed -> "
            f"{resumed[0].client_id} placed and approved on the next tick")
