"""Foundation proofs: journal round trip, replay identity (and that replay catches a divergence), the kill
switch cancels everything, and a rejected order never reaches an executor."""
from __future__ import annotations

import msgspec

from actors.sink.gate import approved_actions
from events.base import MICRO
from events.codec import Envelope, encode
from events.control import KillSwitch, OperatorStop, Tick
from events.market import BookChanged, FeedFrame, FeedStatus
from events.orders import CancelAll, ExchangeReply, OrderIntent, RiskApproved, RiskReject
from events.params import CoreParams, RiskParams
from journal import JournalReader
from replay.harness import ScriptedSession
from replay.journal_io import open_sink, read_envelopes
from replay.proofs import ProofContext, expect, proof
from replay.scripts import MARKET, STANDARD_ASKS, STANDARD_BIDS, pair_snapshot, price_change, trade
from replay.verify import verify

SEC = 10**9


def quoting_session(ctx: ProofContext, params: CoreParams | None = None, **kw: object) -> ScriptedSession:
    """A session with one market, connected, a snapshot, and a few seconds of updates and ticks."""
    params = params or CoreParams(markets=(MARKET,), fills="none")
    s = ctx.session(params, **kw)  # type: ignore[arg-type]
    s.at(SEC, "feed", FeedStatus(conn=1, state="connected"))
    s.at(1000, "feed", FeedFrame(conn=1, text=pair_snapshot(MARKET, STANDARD_BIDS, STANDARD_ASKS)))
    s.at(SEC // 10, "clock", Tick())
    s.at(SEC // 2, "feed", FeedFrame(conn=1, text=price_change(MARKET, [("BUY", "0.48", "40")])))
    s.at(SEC // 2, "clock", Tick())
    s.at(SEC // 2, "feed", FeedFrame(conn=1, text=trade(MARKET, MARKET.yes_token, "0.51", "10", "BUY")))
    s.at(SEC // 2, "clock", Tick())
    s.at(SEC // 2, "feed", FeedFrame(conn=1, text="PONG"))
    s.at(SEC // 2, "clock", Tick())
    return s


@proof("journal_roundtrip")
def journal_roundtrip(ctx: ProofContext) -> str:
    s = quoting_session(ctx)
    s.close()
    expect(s.journal_dir is not None, "proof needs a journal directory")
    reader = JournalReader(s.journal_dir)
    back = [(seq, payload) for seq, payload, _ in read_envelopes(reader)]
    written = [(seq, encode(env)) for seq, env in s.records]
    expect(len(back) == len(written), f"read {len(back)} records, wrote {len(written)}")
    for (sa, pa), (sb, pb) in zip(back, written, strict=True):
        expect(sa == sb and pa == pb, f"record seq {sb} differs after the round trip")
    expect(reader.torn is None, f"clean journal reported a torn tail: {reader.torn}")
    return f"{len(back)} records written, closed, reopened and read back identical; seqs 1..{len(back)} gapless"


@proof("replay_identical")
def replay_identical(ctx: ProofContext) -> str:
    s = quoting_session(ctx, CoreParams(markets=(MARKET,), fills="sim"))
    s.close()
    res = verify(s.journal_dir)
    expect(res.ok, f"replay differs: {res.mismatch}")
    derived = res.records - res.inputs
    expect(derived > 0, "the scripted session derived nothing: the proof would prove nothing")
    # A journal whose derived record was altered must be caught, at exactly that seq.
    target = next((seq for seq, env in s.records if isinstance(env.ev, BookChanged)), None)
    expect(target is not None, "no BookChanged to tamper with")
    tampered_dir = ctx.out_dir / f"{ctx.name}-tampered" if ctx.out_dir else None
    expect(tampered_dir is not None, "proof needs a journal directory")
    sink = open_sink(tampered_dir, run_id="proof-replay_identical-tampered", seed=0, created_ns=s.records[0][1].ts_ns)
    for seq, env in s.records:
        if seq == target:
            ev = msgspec.structs.replace(env.ev, best_bid=env.ev.best_bid + 1)  # type: ignore[union-attr]
            env = Envelope(ts_ns=env.ts_ns, src=env.src, cause=env.cause, ev=ev)
        sink.append(encode(env), env)
    sink.close()
    bad = verify(tampered_dir)
    expect(bad.mismatch is not None, "replay did not notice an altered derived record")
    expect(bad.mismatch.seq == target, f"mismatch reported at seq {bad.mismatch.seq}, altered seq was {target}")
    expect(bad.mismatch.actor == "book", f"mismatch blamed on {bad.mismatch.actor}, expected book")
    return (
        f"{res.records} records ({res.inputs} inputs, {derived} derived) replayed bit for bit; "
        f"an altered BookChanged at seq {target} was reported at that seq, actor book"
    )


@proof("kill_switch_cancels_everything")
def kill_switch_cancels_everything(ctx: ProofContext) -> str:
    s = quoting_session(ctx)
    placed = [env.ev.client_id for _, env in s.find(ExchangeReply) if env.ev.op == "place" and env.ev.ok]
    expect(placed, "no order was live before the kill switch: nothing to prove")
    stop_seq = s.at(SEC, "operator", OperatorStop(reason="proof"))[0][0]
    kills = s.events(KillSwitch, after=stop_seq)
    expect(len(kills) == 1 and kills[0].reason == "operator_stop", f"expected one operator_stop kill, got {kills}")
    expect(s.events(CancelAll, after=stop_seq), "no CancelAll after the kill switch")
    cancelled = {ev.client_id for ev in s.events(ExchangeReply, after=stop_seq) if ev.op == "cancel" and ev.ok}
    missing = sorted(set(placed) - cancelled - _done_before(s, stop_seq))
    expect(not missing, f"orders left open after the kill switch: {missing}")
    # The market keeps moving: nothing may be placed again.
    s.at(SEC, "feed", FeedFrame(conn=1, text=price_change(MARKET, [("BUY", "0.49", "10"), ("SELL", "0.50", "10")])))
    for _ in range(5):
        s.at(SEC, "clock", Tick())
    approved_after = [
        ev for seq, env in s.find(RiskApproved, after=stop_seq) if isinstance(_intent(s, env.ev.intent_seq), OrderIntent)
        for ev in [env.ev]
    ]
    expect(not approved_after, f"{len(approved_after)} place(s) approved after the kill switch")
    return f"{len(placed)} live orders; after OperatorStop: KillSwitch, CancelAll, all cancelled, 0 places approved"


def _intent(s: ScriptedSession, seq: int):
    for sq, env in s.records:
        if sq == seq:
            return env.ev
    return None


def _done_before(s: ScriptedSession, seq: int) -> set[str]:
    return {
        env.ev.client_id for sq, env in s.find(ExchangeReply) if sq < seq and env.ev.op == "cancel" and env.ev.ok
    }


@proof("rejected_order_never_reaches_sink")
def rejected_order_never_reaches_sink(ctx: ProofContext) -> str:
    # Quotes of 10 shares at ~0.5 (about 5 dollars) against a 1-dollar notional limit: every place is rejected.
    params = CoreParams(markets=(MARKET,), fills="none", risk=RiskParams(max_order_notional=1 * MICRO))
    s = quoting_session(ctx, params)
    intents = list(s.find(OrderIntent))
    rejects = s.events(RiskReject)
    expect(intents, "the quoter made no order intents: nothing to prove")
    expect(len(rejects) == len(intents), f"{len(intents)} intents but {len(rejects)} rejects")
    actions = list(approved_actions(s.records))
    expect(not any(kind == "place" for kind, _, _ in actions), f"a rejected order reached the executor: {actions}")
    expect(not s.events(ExchangeReply), "the paper executor answered an order that was never approved")
    codes = sorted({r.code for r in rejects})
    return f"{len(intents)} intents, {len(rejects)} rejected ({', '.join(codes)}), 0 reached the executor"
