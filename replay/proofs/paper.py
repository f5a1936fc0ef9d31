"""Paper-trading proofs: simulated fills replay identically, post-only rejects, queue position, the no-fills
recorder, and cancel-all on a kill. All through the real core (``build_core``) and the real market-channel parser.

Trade prints are aimed at the orders the real quoter/order manager/risk gate actually placed (read back from the
session's own ``SimRested`` records), so the proofs keep working when quoting parameters change; the script is
still a deterministic function of the journal, which is what replay needs.
"""
from __future__ import annotations

import json

import msgspec

from events.base import MICRO
from events.codec import Envelope, encode
from events.control import GuardViolation, KillSwitch, OperatorStop, RunStarted, Tick
from events.market import FeedFrame, FeedStatus
from events.orders import CancelAll, ExchangeReply, Fill, OrderIntent, Position, RiskApproved, RiskReject
from events.paper import SimRested, WouldCancel, WouldPlace
from events.params import CoreParams
from replay.harness import ScriptedSession
from replay.proofs import ProofContext, expect, proof
from replay.scripts import MARKET, STANDARD_ASKS, STANDARD_BIDS, book_event, pair_snapshot, price_change, trade

SEC = 10**9
POST_ONLY_CROSS = "post-only order would cross"


def _dec(micro: int) -> str:
    """Micro units as a wire decimal string (exact)."""
    return f"{micro // MICRO}.{micro % MICRO:06d}"


def _start(s: ScriptedSession, bids=STANDARD_BIDS, asks=STANDARD_ASKS) -> None:  # type: ignore[no-untyped-def]
    s.at(SEC, "feed", FeedStatus(conn=1, state="connected"))
    s.at(1000, "feed", FeedFrame(conn=1, text=pair_snapshot(MARKET, bids, asks)))
    s.at(SEC // 10, "clock", Tick())


def live_sim_orders(s: ScriptedSession) -> dict[str, tuple[SimRested, int]]:
    """Orders resting in the simulated exchange now: client id -> (how it rested, size remaining)."""
    live: dict[str, tuple[SimRested, int]] = {}
    for _, env in s.records:
        ev = env.ev
        if isinstance(ev, SimRested):
            live[ev.client_id] = (ev, ev.size)
        elif isinstance(ev, Fill) and ev.client_id in live:
            rested, rem = live[ev.client_id]
            rem -= ev.size
            if rem > 0:
                live[ev.client_id] = (rested, rem)
            else:
                del live[ev.client_id]
        elif isinstance(ev, ExchangeReply) and ev.op == "cancel" and ev.ok:
            live.pop(ev.client_id, None)
    return live


def _print_at(s: ScriptedSession, rested: SimRested, price: int, size: int, *, via_complement: bool) -> None:
    """A taker trade against ``rested``'s side at ``price`` (its own terms), printed on its token or the mirror."""
    taker = "SELL" if rested.side == "BUY" else "BUY"
    token = rested.token_id
    if via_complement:
        token = MARKET.no_token if token == MARKET.yes_token else MARKET.yes_token
        price = MICRO - price
        taker = "SELL" if taker == "BUY" else "BUY"
    s.at(SEC // 10, "feed", FeedFrame(conn=1, text=trade(MARKET, token, _dec(price), _dec(size), taker)))


def _through(rested: SimRested, ticks: int = 1) -> int:
    step = MARKET.tick * ticks
    return rested.price - step if rested.side == "BUY" else rested.price + step


def _sim_script(s: ScriptedSession) -> None:
    """Quote, get hit (through our price, on either token), re-quote, get lifted, while the book drifts."""
    _start(s)
    drift = [
        [("BUY", "0.48", "30")],
        [("SELL", "0.51", "0"), ("SELL", "0.50", "40")],
        [("BUY", "0.48", "0"), ("SELL", "0.52", "0")],
        [("BUY", "0.47", "90")],
    ]
    for rnd, changes in enumerate(drift):
        for i, (cid, (rested, rem)) in enumerate(sorted(live_sim_orders(s).items())):
            if (rnd + i) % 3 == 2:
                continue  # some orders are left alone this round
            _print_at(s, rested, _through(rested), rem, via_complement=(rnd + i) % 2 == 1)
            s.at(SEC // 2, "clock", Tick())
            del cid
        s.at(SEC, "feed", FeedFrame(conn=1, text=price_change(MARKET, changes, ts=10 + rnd)))
        for _ in range(3):
            s.at(SEC, "clock", Tick())


def _same_run_id(env: Envelope) -> Envelope:
    """The two runs differ only in their run id (their journals need distinct names): blank it to compare."""
    if isinstance(env.ev, RunStarted):
        return msgspec.structs.replace(env, ev=msgspec.structs.replace(env.ev, run_id=""))
    return env


@proof("sim_fills_replay_identical")
def sim_fills_replay_identical(ctx: ProofContext) -> str:
    params = CoreParams(markets=(MARKET,), fills="sim")
    a = ctx.session(params)
    _sim_script(a)
    b = ctx.session(params, suffix="again")
    _sim_script(b)
    fills = a.events(Fill)
    positions = a.events(Position)
    expect(fills, "the scripted session produced no simulated fill: nothing to prove")
    expect(positions, "fills produced no Position")
    expect(not a.events(KillSwitch), f"the session was halted: {a.events(KillSwitch)}")
    expect(any(p.realized != 0 for p in positions), "no round trip: realized PnL stayed 0")
    blob_a = [encode(_same_run_id(env)) for _, env in a.records]
    blob_b = [encode(_same_run_id(env)) for _, env in b.records]
    expect(len(blob_a) == len(blob_b), f"run 1 has {len(blob_a)} records, run 2 has {len(blob_b)}")
    for (seq, _), x, y in zip(a.records, blob_a, blob_b, strict=True):
        expect(x == y, f"runs differ at seq {seq}")
    last: dict[str, Position] = {}
    for p in positions:
        last[p.token_id] = p
    tokens = {f.token_id for f in fills}
    sides = {f.side for f in fills}
    mtm = sum(p.mtm for p in last.values())
    realized = sum(p.realized for p in last.values())
    return (
        f"{len(a.records)} records identical over two runs; {len(fills)} fills ({'/'.join(sorted(sides))} on "
        f"{len(tokens)} tokens), {len(positions)} positions, realized {realized / MICRO:+.6f}, mtm {mtm / MICRO:+.6f}"
    )


def _scripted_place(s: ScriptedSession, client_id: str, token: str, side: str, price: int, size: int) -> str:
    """Submit an OrderIntent as the order manager would. The real risk gate decides it in the same cascade;
    returns its decision: "approved" or the reject code."""
    out = s.at(SEC // 10, "orders", OrderIntent(client_id=client_id, condition_id=MARKET.condition_id, token_id=token,
                                                side=side, price=price, size=size))  # type: ignore[arg-type]
    intent_seq = out[0][0]
    for _, env in out:
        if isinstance(env.ev, RiskApproved) and env.ev.intent_seq == intent_seq:
            return "approved"
        if isinstance(env.ev, RiskReject) and env.ev.intent_seq == intent_seq:
            return env.ev.code
    return "undecided"


@proof("sim_post_only_reject")
def sim_post_only_reject(ctx: ProofContext) -> str:
    # Shadow quoting (no intents of our own); the two books deliberately not mirrors of each other, so that the
    # risk gate's same-token check passes and only the complement (mint) check of the exchange can see the cross.
    s = ctx.session(CoreParams(markets=(MARKET,), fills="sim", quoting=False))
    s.at(SEC, "feed", FeedStatus(conn=1, state="connected"))
    yes = book_event(MARKET.condition_id, MARKET.yes_token, (("0.45", "100"), ("0.46", "80"), ("0.47", "60")),
                     (("0.52", "60"), ("0.53", "80"), ("0.54", "100")))
    no = book_event(MARKET.condition_id, MARKET.no_token, (("0.50", "20"),), (("0.55", "20"),))
    s.at(1000, "feed", FeedFrame(conn=1, text=json.dumps([yes, no])))
    s.at(SEC // 10, "clock", Tick())
    # Same-token cross: the risk gate already refuses it (defence in depth); it never reaches the exchange.
    first = _scripted_place(s, "px-same", MARKET.yes_token, "BUY", 520_000, 10 * MICRO)
    expect(first == "would_cross", f"a BUY YES at the YES best ask was {first} by the risk gate")
    crossing = [
        ("px-mint-yes", MARKET.yes_token, 500_000),  # BUY YES 0.50 meets the NO bid at 0.50 (mint: 0.50 + 0.50 >= 1)
        ("px-mint-no", MARKET.no_token, 530_000),  # BUY NO 0.53 meets the YES bid at 0.47 (0.53 + 0.47 >= 1)
    ]
    for cid, token, price in crossing:
        decision = _scripted_place(s, cid, token, "BUY", price, 10 * MICRO)
        expect(decision == "approved", f"the risk gate {decision} {cid}: the exchange's check would not be reached")
    replies = {ev.client_id: ev for ev in s.events(ExchangeReply) if ev.op == "place"}
    for cid, _, _ in crossing:
        r = replies.get(cid)
        expect(r is not None and not r.ok and r.status == "rejected" and r.message == POST_ONLY_CROSS,
               f"crossing place {cid} answered {r}")
    # The market then trades through those prices: a rejected order never rests, so it never fills.
    s.at(SEC // 10, "feed", FeedFrame(conn=1, text=trade(MARKET, MARKET.yes_token, "0.44", "500", "SELL")))
    s.at(SEC // 10, "feed", FeedFrame(conn=1, text=trade(MARKET, MARKET.no_token, "0.40", "500", "SELL")))
    ids = {cid for cid, _, _ in crossing} | {"px-same"}
    expect(not [ev for ev in s.events(SimRested) if ev.client_id in ids], "a rejected order rested")
    expect(not [ev for ev in s.events(Fill) if ev.client_id in ids], "a rejected order was filled")
    expect(not s.events(GuardViolation), f"guard violations: {s.events(GuardViolation)}")
    # A control order one tick further away is accepted, so the rejection was about crossing.
    expect(_scripted_place(s, "ok-yes", MARKET.yes_token, "BUY", 490_000, 10 * MICRO) == "approved",
           "control order not approved")
    ok = [ev for ev in s.events(ExchangeReply) if ev.client_id == "ok-yes" and ev.op == "place"]
    expect(ok and ok[0].ok and ok[0].status == "live", f"the non-crossing control order was not accepted: {ok}")
    return ("same-token cross refused by the risk gate; BUY YES 0.50 vs NO bid 0.50 and BUY NO 0.53 vs YES bid "
            "0.47 (mint) approved by risk, rejected post-only by the exchange, never rested nor filled; "
            "BUY YES 0.49 rests")


@proof("sim_queue_position")
def sim_queue_position(ctx: ProofContext) -> str:
    # A dense book: whatever price the quoter picks near the mid already has size resting at it.
    bids = tuple((f"0.{p}", "50") for p in range(40, 49))
    asks = tuple((f"0.{p}", "50") for p in range(50, 59))
    s = ctx.session(CoreParams(markets=(MARKET,), fills="sim"))
    _start(s, bids, asks)
    queued = [(r, rem) for r, rem in live_sim_orders(s).values() if r.queue_ahead > 0]
    expect(queued, f"no order rested behind others: {live_sim_orders(s)}")
    rested, size = sorted(queued, key=lambda x: x[0].client_id)[0]
    ahead = rested.queue_ahead
    first = ahead // 2
    mark = s.records[-1][0]
    _print_at(s, rested, rested.price, first, via_complement=False)  # smaller than the queue ahead of us
    expect(not [f for f in s.events(Fill, after=mark) if f.client_id == rested.client_id],
           f"a {first} trade filled us with {ahead} ahead")
    expect(rested.client_id in live_sim_orders(s), "our order left the book after the first trade")
    want = size // 2
    mark = s.records[-1][0]
    _print_at(s, rested, rested.price, (ahead - first) + want, via_complement=True)  # the rest of the queue + half us
    got = [f for f in s.events(Fill, after=mark) if f.client_id == rested.client_id]
    expect(len(got) == 1 and got[0].size == want and got[0].price == rested.price,
           f"expected one partial fill of {want} at {rested.price}, got {got}")
    return (
        f"{rested.client_id} {rested.side} {rested.token_id} @ {rested.price} rested behind {ahead}: a {first} trade "
        f"filled nothing, a {ahead - first + want} trade (printed on the complement) filled {want} of {size}"
    )


@proof("paper_no_fills_records")
def paper_no_fills_records(ctx: ProofContext) -> str:
    s = ctx.session(CoreParams(markets=(MARKET,), fills="none"))
    _start(s)
    s.at(SEC // 2, "clock", Tick())
    # The book moves two ticks up: the quotes follow (cancel + replace), and the market trades through them.
    s.at(SEC, "feed", FeedFrame(conn=1, text=price_change(MARKET, [("BUY", "0.49", "50"), ("SELL", "0.52", "0"),
                                                                   ("SELL", "0.51", "0")])))
    for _ in range(3):
        s.at(SEC // 2, "clock", Tick())
    s.at(SEC // 2, "feed", FeedFrame(conn=1, text=trade(MARKET, MARKET.yes_token, "0.40", "1000", "SELL")))
    s.at(SEC // 2, "feed", FeedFrame(conn=1, text=trade(MARKET, MARKET.yes_token, "0.60", "1000", "BUY")))
    s.at(SEC // 2, "clock", Tick())
    places = s.events(WouldPlace)
    cancels = s.events(WouldCancel)
    expect(places, "no WouldPlace: the recorder recorded nothing")
    expect(cancels, "no WouldCancel: the quotes never moved")
    acks = {ev.client_id: ev for ev in s.events(ExchangeReply) if ev.op == "place"}
    for w in places:
        a = acks.get(w.client_id)
        expect(a is not None and a.ok and a.status == "live" and a.order_id == f"paper-{w.client_id}",
               f"WouldPlace {w.client_id} was not acked live: {a}")
    approved = {env.ev.intent_seq for _, env in s.find(RiskApproved)}
    expect(all(w.intent_seq in approved for w in places), "a WouldPlace without a risk approval")
    cancelled = {ev.client_id for ev in s.events(ExchangeReply) if ev.op == "cancel" and ev.ok}
    expect({c.client_id for c in cancels} == cancelled, "WouldCancel and cancel acks differ")
    expect(not s.events(Fill), "the no-fills recorder produced a Fill")
    expect(not s.events(Position), "a Position without fills")
    return f"{len(places)} would-place and {len(cancels)} would-cancel journaled and acked; trades through: 0 fills"


@proof("paper_cancel_all_on_kill")
def paper_cancel_all_on_kill(ctx: ProofContext) -> str:
    s = ctx.session(CoreParams(markets=(MARKET,), fills="sim"))
    _start(s)
    s.at(SEC, "feed", FeedFrame(conn=1, text=price_change(MARKET, [("BUY", "0.47", "80")])))
    s.at(SEC // 2, "clock", Tick())
    live = live_sim_orders(s)
    expect(live, "no simulated order was resting before the stop: nothing to prove")
    stop = s.at(SEC, "operator", OperatorStop(reason="proof"))[0][0]
    expect(s.events(CancelAll, after=stop), "no CancelAll after OperatorStop")
    replies = [ev for ev in s.events(ExchangeReply, after=stop) if ev.op in ("cancel", "cancel_all")]
    per_order = [r.client_id for r in replies if r.op == "cancel" and r.ok]
    expect(sorted(live) == sorted(per_order), f"open {sorted(live)}, cancelled {per_order}")
    expect(per_order == sorted(per_order), f"cancel replies not in sorted order: {per_order}")
    expect(replies and replies[-1].op == "cancel_all" and replies[-1].ok, "no final cancel_all reply")
    expect(not live_sim_orders(s), f"still resting after the stop: {sorted(live_sim_orders(s))}")
    after = s.records[-1][0]
    for rested, _ in live.values():  # the market trades through every old price: nothing may fill
        _print_at(s, rested, _through(rested, 2), 10_000 * MICRO, via_complement=False)
    s.at(SEC, "clock", Tick())
    expect(not s.events(Fill, after=after), "a cancelled order filled after the stop")
    expect(not s.events(SimRested, after=stop), "an order rested after the stop")
    return f"{len(live)} resting orders; OperatorStop -> CancelAll -> {len(per_order)} cancel replies (sorted) + " \
           "cancel_all; none rests or fills afterwards"
