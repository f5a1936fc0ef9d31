"""Live-trading proofs: preflight refuses what it must; the live core parses the venue's user channel into fills
and cancels; an unknown submit outcome blocks its token until it is resolved; heartbeat loss trips the kill switch;
an order of ours that we never signed halts trading; tokens held at start count in the risk gate and the portfolio. All through the real core (``fills="live"``: the live core
executor ``actors.core.live``), with the venue scripted by ``ScriptedVenue``: it signs (``OrderSigned``), answers
(``ExchangeReply``) and speaks on the user channel (``UserFrame``) exactly as the live sinks and edges record it.
"""
from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import msgspec

from actors.core.live import key_id
from actors.edge.exchange import judge_geoblock as geoblock_answer
from actors.sink.gate import ApprovedActions
from events.base import MICRO
from events.control import KillSwitch, Tick, TradingState
from events.live import (
    LiveIdentity,
    OpenOrdersSnapshot,
    OrderSigned,
    PreflightCheck,
    ReconcileStarted,
    StartingInventory,
    StartupCleanup,
    TokenBalance,
    UserFrame,
    UserStatus,
)
from events.market import FeedFrame, FeedStatus
from events.orders import (
    CancelAll,
    CancelIntent,
    ExchangeReply,
    Fill,
    OrderIntent,
    OrderState,
    Position,
    RiskApproved,
    RiskReject,
)
from events.params import CoreParams, OrderParams, RiskParams
from replay.harness import ScriptedSession
from replay.proofs import ProofContext, expect, proof
from replay.scripts import MARKET as REWARD_MARKET
from replay.scripts import STANDARD_ASKS, STANDARD_BIDS, pair_snapshot

MARKET = msgspec.structs.replace(REWARD_MARKET, reward_min_size=0, reward_max_spread=0)
SEC = 10**9
ADDRESS = "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A"
API_KEY = "6f0e7d3c-1b2a-4c5d-8e9f-0a1b2c3d4e5f"
OTHER_KEY = "11111111-2222-4333-8444-555555555555"
OTHER_ADDRESS = "0x" + "ab" * 20
LOW_BIDS = (("0.25", "100"), ("0.26", "80"), ("0.27", "60"))
LOW_ASKS = (("0.33", "100"), ("0.32", "80"), ("0.31", "60"))


def live_params(**risk: int) -> CoreParams:
    return CoreParams(markets=(MARKET,), fills="live", orders=OrderParams(ack_timeout_ns=10 * SEC),
                      risk=RiskParams(**risk))


def wire(micro: int) -> str:
    """Micro-units as the venue writes them ("0.47", "10")."""
    d = (Decimal(micro) / MICRO).normalize()
    return format(d, "f")


def order_hash(client_id: str) -> str:
    return "0x" + hashlib.sha256(client_id.encode()).hexdigest()


class ScriptedVenue:
    """The exchange side of a live session, scripted: what the executor, the user channel and the session record."""

    def __init__(self, s: ScriptedSession) -> None:
        self.s = s
        self.signed: dict[str, str] = {}
        self.gate = ApprovedActions()
        self._fed = 0
        self._fence = 0
        self.match_time = s.now // SEC

    def start(self, *, leftovers: tuple[str, ...] = (), inventory: StartingInventory | None = None) -> None:
        self.s.at(0, "session", LiveIdentity(address=ADDRESS, key_id=key_id(API_KEY), exchange="scripted"))
        self.s.at(0, "session", StartupCleanup(found=leftovers, cancelled=leftovers, remaining=(), ok=True))
        if inventory is not None:  # journals recorded before it existed have none: the other proofs show those
            self.s.at(0, "session", inventory)
        self.s.at(0, "user", UserStatus(conn=1, state="connected"))
        self.snapshot(())

    def open_market(self) -> None:
        s = self.s
        s.at(SEC, "feed", FeedStatus(conn=1, state="connected"))
        s.at(1000, "feed", FeedFrame(conn=1, text=pair_snapshot(MARKET, STANDARD_BIDS, STANDARD_ASKS)))
        s.at(SEC // 10, "clock", Tick())

    def alive(self, seconds: int) -> None:
        for _ in range(2 * seconds):
            self.s.at(SEC // 2, "feed", FeedFrame(conn=1, text="PONG"))
            self.s.at(0, "clock", Tick())

    def approved(self) -> list[tuple[str, int, OrderIntent | CancelIntent | CancelAll]]:
        """Actions the structural gate let through since the last call."""
        out = []
        for seq, env in self.s.records[self._fed:]:
            a = self.gate.feed(seq, env)
            if a is not None:
                out.append(a)
        self._fed = len(self.s.records)
        return out

    def sign(self, client_id: str, intent_seq: int) -> str:
        h = order_hash(client_id)
        self.signed[client_id] = h
        self.s.at(SEC // 100, "exec", OrderSigned(client_id=client_id, intent_seq=intent_seq, order_hash=h, salt=1,
                                                  timestamp_ms=self.s.now // 10**6))
        return h

    def reply(self, client_id: str, op: str = "place", *, ok: bool = True, status: str = "live", message: str = "") -> None:
        self.s.at(SEC // 100, "exec", ExchangeReply(client_id=client_id, op=op, ok=ok,  # type: ignore[arg-type]
                                                    order_id=self.signed.get(client_id, ""), status=status,
                                                    message=message))

    def serve(self, *, unknown: tuple[str, ...] = ()) -> list[OrderIntent]:
        """Sign and answer every newly approved place ("live", or "unknown" for tokens in ``unknown``); cancel
        what is approved for cancelling."""
        placed = []
        for kind, seq, it in self.approved():
            if kind == "place":
                assert isinstance(it, OrderIntent)
                self.sign(it.client_id, seq)
                if it.token_id in unknown:
                    self.reply(it.client_id, ok=False, status="unknown", message="no answer to POST /order")
                else:
                    self.reply(it.client_id)
                placed.append(it)
            elif kind == "cancel":
                assert isinstance(it, CancelIntent)
                if it.client_id in self.signed:
                    self.reply(it.client_id, "cancel", status="cancelled")
        return placed

    def frame(self, obj: dict, conn: int = 1) -> None:
        self.s.at(SEC // 100, "user", UserFrame(conn=conn, text=json.dumps(obj, separators=(",", ":"))))

    def trade(self, it: OrderIntent, size: int, status: str, trade_id: str = "t-1", *, order_id: str | None = None,
              owner: str = API_KEY, maker_address: str = ADDRESS, match_time: int | None = None) -> None:
        taker_side = "SELL" if it.side == "BUY" else "BUY"
        self.frame({
            "event_type": "trade", "type": "TRADE", "id": trade_id, "taker_order_id": "0x" + "ee" * 32,
            "market": it.condition_id, "asset_id": it.token_id, "side": taker_side, "size": wire(size),
            "price": wire(it.price), "fee_rate_bps": "0", "status": status,
            "match_time": str(self.match_time if match_time is None else match_time), "last_update": "0",
            "outcome": "Yes", "owner": OTHER_KEY, "trade_owner": owner, "maker_address": OTHER_ADDRESS,
            "transaction_hash": "", "bucket_index": 0,
            "maker_orders": [{"order_id": self.signed.get(it.client_id, "") if order_id is None else order_id,
                              "owner": owner, "maker_address": maker_address, "matched_amount": wire(size),
                              "price": wire(it.price), "fee_rate_bps": "0", "asset_id": it.token_id,
                              "outcome": "Yes", "side": it.side}],
            "trader_side": "MAKER", "timestamp": "0",
        })

    def order_event(self, order_id: str, kind: str, status: str) -> None:
        self.frame({"event_type": "order", "id": order_id, "owner": API_KEY, "market": MARKET.condition_id,
                    "asset_id": MARKET.yes_token, "side": "BUY", "original_size": "5", "size_matched": "0",
                    "price": "0.47", "type": kind, "status": status, "maker_address": ADDRESS, "timestamp": "0"})

    def snapshot(self, order_ids: tuple[str, ...], source: str = "reconnect") -> None:
        self._fence += 1
        fence = f"user:{self._fence}"
        self.s.at(SEC // 100, "user", ReconcileStarted(fence=fence, source=source))
        self.s.at(SEC // 100, "user", OpenOrdersSnapshot(fence=fence, order_ids=order_ids, source=source))


def _kill(s: ScriptedSession, reason: str) -> int:
    kills = [(seq, env.ev) for seq, env in s.find(KillSwitch)]
    expect(kills, f"no KillSwitch (expected {reason})")
    expect(kills[0][1].reason == reason, f"first KillSwitch is {kills[0][1].reason}, expected {reason}")
    halted = [ev for ev in s.events(TradingState, after=kills[0][0] - 1) if ev.state == "HALTED"]
    expect(halted, "the kill switch did not halt trading")
    expect(s.events(CancelAll, after=kills[0][0] - 1), "no CancelAll after the kill switch")
    return kills[0][0]


def _no_place_after(s: ScriptedSession, venue: ScriptedVenue, kill: int) -> int:
    """Keep the market moving after the kill; no place may be approved."""
    s.at(SEC, "feed", FeedFrame(conn=1, text=pair_snapshot(MARKET, LOW_BIDS, LOW_ASKS, ts=7)))
    venue.alive(3)
    gate = ApprovedActions()
    places = [a for seq, env in s.records if (a := gate.feed(seq, env)) is not None and a[0] == "place" and seq > kill]
    expect(not places, f"{len(places)} place(s) approved after the kill switch")
    return len(s.events(OrderIntent, after=kill))


# ---------------------------------------------------------------------------------------------- preflight
@proof("live_preflight_refuses")
def live_preflight_refuses(ctx: ProofContext) -> str:
    """Preflight's judgements over check inputs: a blocked or unreachable geoblock, a missing allowlist, missing or
    oversized caps each refuse; a complete, tiny config passes. The verdicts are journaled as PreflightCheck."""
    from pmm.config import AppConfig, LiveConfig, MarketSelector
    from pmm.preflight import judge_allowlist, judge_caps, judge_geoblock

    tiny = RiskParams(max_order_size=10 * MICRO, max_order_notional=5 * MICRO, max_position=20 * MICRO,
                      max_total_notional=20 * MICRO, daily_loss=5 * MICRO, max_loss=10 * MICRO)
    good = AppConfig(markets=(MarketSelector(condition_id=MARKET.condition_id),), risk=tiny,
                     live=LiveConfig(enabled=True))
    every = {"max_order_size", "max_position", "max_total_notional", "daily_loss"}
    cases = [
        ("geoblock blocked", judge_geoblock(*_geo(200, {"blocked": True, "country": "US", "region": "NY"})), False),
        ("geoblock down (HTTP 503)", judge_geoblock(*_geo(503, {"error": "Service Unavailable"})), False),
        ("geoblock unreachable", judge_geoblock(*_geo(0, None)), False),
        ("geoblock unreadable", judge_geoblock(*_geo(200, {"country": "IE"})), False),
        ("no allowlist", judge_allowlist(msgspec.structs.replace(good, markets=())), False),
        ("caps not in the file", judge_caps(good, frozenset({"daily_loss"})), False),
        ("caps above the tiny limits", judge_caps(msgspec.structs.replace(good, risk=RiskParams()), every), False),
        ("geoblock allowed", judge_geoblock(*_geo(200, {"blocked": False, "country": "IE", "region": "L"})), True),
        ("allowlist of one", judge_allowlist(good), True),
        ("tiny caps, explicit", judge_caps(good, every), True),
    ]
    s = ctx.session(live_params(), mode="preflight")
    for label, check, want in cases:
        s.at(SEC // 100, "preflight", PreflightCheck(name=check.name, ok=check.ok, detail=f"{label}: {check.detail}"))
        expect(check.ok is want, f"{label}: expected {'PASS' if want else 'FAIL'}, got {check.line()}")
    refused = sum(1 for _, c, w in cases if not w)
    return f"{refused} refusals (blocked, down, unreachable, unreadable geoblock; no allowlist; caps missing or big), " \
           f"{len(cases) - refused} passes"


def _geo(status: int, body: object) -> tuple[bool, str]:
    ans = geoblock_answer(status, body)
    return ans.ok, ans.detail


# ---------------------------------------------------------------------------------------------- the user channel
@proof("live_fills_from_user_channel")
def live_fills_from_user_channel(ctx: ProofContext) -> str:
    """Trade events for our maker rows become fills: MATCHED (counted), MINED (nothing new), CONFIRMED (final), the
    same trade again from the REST reconcile (nothing), a ghost fill FAILED (reversed); positions follow."""
    s = ctx.session(live_params())
    v = ScriptedVenue(s)
    v.start()
    v.open_market()
    placed = v.serve()
    expect(len(placed) == 2, f"expected a bid on each token, got {placed}")
    yes = next(it for it in placed if it.token_id == MARKET.yes_token)
    no = next(it for it in placed if it.token_id == MARKET.no_token)
    for status in ("MATCHED", "MINED", "CONFIRMED", "CONFIRMED"):
        v.trade(yes, 2 * MICRO, status, "t-yes")
    v.trade(no, 3 * MICRO, "MATCHED", "t-no")
    v.trade(no, 3 * MICRO, "RETRYING", "t-no")
    v.trade(no, 3 * MICRO, "FAILED", "t-no")
    fills = [(f.trade_id, f.status) for f in s.events(Fill)]
    expect(fills == [("t-yes", "MATCHED"), ("t-yes", "CONFIRMED"), ("t-no", "MATCHED"), ("t-no", "FAILED")],
           f"fills: {fills}")
    pos = {p.token_id: p.position for p in s.events(Position)}
    expect(pos.get(MARKET.yes_token) == 2 * MICRO, f"YES position {pos.get(MARKET.yes_token)}")
    expect(pos.get(MARKET.no_token) == 0, f"NO position after the failed trade: {pos.get(MARKET.no_token)}")
    states = [ev.state for ev in s.events(OrderState) if ev.client_id == yes.client_id]
    expect("partially_filled" in states, f"YES order states {states}")
    expect(not s.events(KillSwitch), "a kill switch tripped")
    return "MATCHED/MINED/CONFIRMED/CONFIRMED -> 2 fills; ghost MATCHED/RETRYING/FAILED -> fill and reversal; " \
           "YES +2, NO 0"


@proof("live_venue_cancels_and_snapshot")
def live_venue_cancels_and_snapshot(ctx: ProofContext) -> str:
    """A CANCELLATION on the user channel (e.g. the venue's heartbeat expiry) cancels our order; after a reconnect,
    an acknowledged order missing from the open-order listing is resolved as cancelled; one acknowledged after
    the listing started is left alone."""
    s = ctx.session(live_params())
    v = ScriptedVenue(s)
    v.start()
    v.open_market()
    placed = v.serve()
    yes = next(it for it in placed if it.token_id == MARKET.yes_token)
    no = next(it for it in placed if it.token_id == MARKET.no_token)
    v.order_event(v.signed[yes.client_id], "CANCELLATION", "CANCELED")
    cancels = [r for r in s.events(ExchangeReply) if r.op == "cancel" and r.ok and r.client_id == yes.client_id]
    expect(len(cancels) == 1, f"CANCELLATION did not cancel {yes.client_id}: {cancels}")
    # a reconnect's listing does not show the NO order: it is gone
    v.snapshot(())
    gone = [r for r in s.events(ExchangeReply) if r.op == "cancel" and r.client_id == no.client_id]
    expect(gone and gone[0].status == "cancelled", f"absent order not resolved: {gone}")
    # fence: an order acknowledged after the listing was fetched is not judged by it
    v.s.at(SEC // 100, "user", ReconcileStarted(fence="late", source="reconnect"))
    v.s.at(SEC, "feed", FeedFrame(conn=1, text=pair_snapshot(MARKET, LOW_BIDS, LOW_ASKS, ts=3)))
    v.s.at(SEC // 10, "clock", Tick())
    later = v.serve()
    mark = s.records[-1][0]
    v.s.at(SEC // 100, "user", OpenOrdersSnapshot(fence="late", order_ids=(), source="reconnect"))
    wrong = [r for r in s.events(ExchangeReply, after=mark) if r.op == "cancel"]
    expect(later and not wrong, f"an order acknowledged after the fence was judged by the listing: {wrong}")
    expect(not s.events(KillSwitch), "a kill switch tripped")
    return f"venue CANCELLATION -> {yes.client_id} cancelled; absent after reconnect -> {no.client_id} cancelled; " \
           f"{len(later)} order(s) acknowledged after the fence untouched"


@proof("live_unsigned_order_halts")
def live_unsigned_order_halts(ctx: ProofContext) -> str:
    """An order of our account that we never signed, in the open-order listing, halts trading (fail closed);
    the leftovers of an earlier run (cancelled at start) do not."""
    s = ctx.session(live_params())
    v = ScriptedVenue(s)
    leftover = "0x" + "0f" * 32
    v.start(leftovers=(leftover,))
    v.open_market()
    v.serve()
    v.snapshot((leftover,))
    expect(not s.events(KillSwitch), "a leftover of an earlier run tripped the kill switch")
    stranger = "0x" + "5a" * 32
    v.snapshot((stranger,))
    kill = _kill(s, "unknown_order")
    intents = _no_place_after(s, v, kill)
    return f"leftover ignored; unknown open order {stranger[:10]}… -> KillSwitch(unknown_order), HALTED; " \
           f"{intents} intent(s) after, 0 approved"


# ---------------------------------------------------------------------------------------------- unknown outcomes
@proof("live_unknown_outcome_blocks_token")
def live_unknown_outcome_blocks_token(ctx: ProofContext) -> str:
    """A place whose reply was lost (ExchangeReply unknown) blocks its token: nothing more is placed there, while
    the other token is still quoted, until the executor's lookup resolves it; then quoting resumes."""
    s = ctx.session(live_params())
    v = ScriptedVenue(s)
    v.start()
    v.open_market()
    placed = v.serve(unknown=(MARKET.yes_token,))
    yes = next(it for it in placed if it.token_id == MARKET.yes_token)
    mark = s.records[-1][0]
    s.at(SEC, "feed", FeedFrame(conn=1, text=pair_snapshot(MARKET, LOW_BIDS, LOW_ASKS, ts=2)))
    v.alive(3)
    moved = v.serve()
    blocked = [it for it in s.events(OrderIntent, after=mark) if it.token_id == MARKET.yes_token]
    expect(not blocked, f"an order was placed on a token with an unknown order: {blocked}")
    expect(any(it.token_id == MARKET.no_token for it in moved), "the other token was not re-quoted")
    # the lookup finds it: live. The token is free again: the stale order is cancelled and a new one placed.
    mark = s.records[-1][0]
    v.reply(yes.client_id, status="live", message="resolved: found LIVE at the venue")
    s.at(SEC // 2, "clock", Tick())
    v.serve()
    resumed = [it for it in s.events(OrderIntent, after=mark) if it.token_id == MARKET.yes_token]
    expect(resumed, "the token stayed blocked after the unknown order was resolved")
    expect(not s.events(KillSwitch), "a kill switch tripped")
    return f"{yes.client_id} unknown -> 0 YES places while unresolved ({len(moved)} NO); resolved live -> " \
           f"{resumed[0].client_id} placed"


# ---------------------------------------------------------------------------------------------- heartbeat
@proof("live_heartbeat_loss_kills")
def live_heartbeat_loss_kills(ctx: ProofContext) -> str:
    """A failed heartbeat (the edge's KillSwitch(heartbeat_failed) input) halts trading at once: CancelAll, and
    not one place approved afterwards while the market keeps moving."""
    from events.live import HeartbeatStatus

    s = ctx.session(live_params())
    v = ScriptedVenue(s)
    v.start()
    s.at(0, "heartbeat", HeartbeatStatus(ok=True, beats=1))
    v.open_market()
    v.serve()
    s.at(SEC, "heartbeat", HeartbeatStatus(ok=False, detail="HTTP 503 Service Unavailable", beats=1))
    s.at(0, "heartbeat", KillSwitch(reason="heartbeat_failed", detail="HTTP 503 Service Unavailable"))
    kill = _kill(s, "heartbeat_failed")
    cancel_all = [a for a in v.approved() if a[0] == "cancel_all"]
    expect(len(cancel_all) == 1, f"the executor got {len(cancel_all)} cancel-alls")
    intents = _no_place_after(s, v, kill)
    return f"KillSwitch(heartbeat_failed) -> HALTED, one CancelAll to the executor; {intents} intent(s) after, " \
           f"0 approved"



# ---------------------------------------------------------------------------------------------- starting inventory
def _held(yes: int, no: int = 0) -> StartingInventory:
    return StartingInventory(balances=(TokenBalance(token_id=MARKET.yes_token, balance=yes),
                                       TokenBalance(token_id=MARKET.no_token, balance=no)),
                             detail="scripted: the wallet's balances at start")


@proof("live_starting_inventory")
def live_starting_inventory(ctx: ProofContext) -> str:
    """Tokens the wallet held before the run (``StartingInventory``) count from the start. With 45 YES held and a
    50-share cap, the quoter's bid on YES is refused (position_limit: 45 + bid > 50) while its ask is a SELL of the
    held YES, approved (without the inventory it would be insufficient_position); the YES position is 45 at once,
    entered at its first mark (PnL 0, not a windfall). A 40 s venue-side start before the feed does not trip the
    stale-feed kill switch (30 s): its clock starts with the feed. A start beyond the cap halts (position_limit)."""
    s = ctx.session(live_params(max_position=50 * MICRO))
    v = ScriptedVenue(s)
    v.start(inventory=_held(45 * MICRO))
    s.at(40 * SEC, "clock", Tick())  # heartbeat and user channel took 40 s; the feed starts after them
    expect(not s.events(KillSwitch), f"a kill switch before the feed started: {s.events(KillSwitch)}")
    v.open_market()
    v.serve()
    intents = {it.client_id: it for it in s.events(OrderIntent)}
    refused = [r for r in s.events(RiskReject) if intents[r.client_id].token_id == MARKET.yes_token
               and intents[r.client_id].side == "BUY"]
    expect(refused and all(r.code == "position_limit" for r in refused), f"YES bids: {refused}")
    approved = [intents[a.client_id] for a in s.events(RiskApproved) if a.client_id in intents]
    sells = [it for it in approved if it.token_id == MARKET.yes_token and it.side == "SELL"]
    expect(sells, f"the held YES was not offered: approved {approved}")
    yes = [p for p in s.events(Position) if p.token_id == MARKET.yes_token]
    expect(yes and yes[0].position == 45 * MICRO and yes[0].mtm == 0, f"YES positions {yes}")
    marked = [p for p in yes if p.mark]
    expect(marked and -1 <= marked[0].mtm <= 0, f"PnL at the first mark: {marked[:1]}")
    expect(not s.events(KillSwitch), f"a kill switch tripped: {s.events(KillSwitch)}")

    big = ctx.session(live_params(max_position=50 * MICRO), suffix="beyond")
    w = ScriptedVenue(big)
    w.start(inventory=_held(0, 60 * MICRO))
    kill = _kill(big, "position_limit")
    w.open_market()
    places = [a for a in w.approved() if a[0] == "place"]
    expect(not places, f"{len(places)} place(s) approved with a start beyond the cap")
    return (f"45 YES held: {len(refused)} YES bid(s) refused (position_limit), {len(sells)} SELL of held YES "
            f"approved, PnL {marked[0].mtm} at the first mark; no stale kill over a 40 s start; 60 NO held -> "
            f"KillSwitch(position_limit) at seq {kill}, 0 places")
