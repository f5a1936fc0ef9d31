"""The sequencer: deterministic order, breadth-first cascades, cause and time stamping, crash-only errors."""
from __future__ import annotations

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.sequencer import Sequencer, Subscriber, run_sequencer
from events import Envelope, encode
from events.control import KillSwitch, Tick
from events.market import FeedFrame, ParseError, ResyncRequest
from replay.harness import MemorySink


class Echo:
    """A toy core actor: each FeedFrame becomes a ParseError, whose handling (by Chain) makes a ResyncRequest."""

    name = "echo"
    consumes = (FeedFrame,)

    def step(self, seq, env):
        return [ParseError(conn=env.ev.conn, reason=f"seen {seq}", excerpt=env.ev.text[:5])]


class Chain:
    name = "chain"
    consumes = (ParseError, FeedFrame)

    def step(self, seq, env):
        if isinstance(env.ev, FeedFrame):
            return [ResyncRequest(token_id=env.ev.text[:3], reason="frame")]
        return [ResyncRequest(token_id="x", reason=f"from {seq}")]


class Boom:
    name = "boom"
    consumes = (Tick,)

    def step(self, seq, env):
        raise ZeroDivisionError("planted")


def run(inputs):
    sink = MemorySink()
    seq = Sequencer(sink, [Echo(), Chain(), Boom()])
    for src, ts, ev in inputs:
        seq.submit(src, ts, ev)
    return sink.payloads


def test_cascade_is_breadth_first_in_declared_order_with_cause_and_input_time() -> None:
    sink = MemorySink()
    out = Sequencer(sink, [Echo(), Chain()]).submit("feed", 100, FeedFrame(conn=1, text="abcdef"))
    kinds = [(s, e.src, e.cause, type(e.ev).__name__) for s, e in out]
    assert kinds == [
        (1, "feed", 0, "FeedFrame"),
        (2, "echo", 1, "ParseError"),       # echo is declared first
        (3, "chain", 1, "ResyncRequest"),
        (4, "chain", 2, "ResyncRequest"),   # then the cascade from seq 2
    ]
    assert {e.ts_ns for _, e in out} == {100}
    assert [encode(e) for _, e in out] == sink.payloads


def test_time_never_goes_backwards() -> None:
    sink = MemorySink()
    s = Sequencer(sink, [])
    s.submit("clock", 50, Tick())
    (_, env), = s.submit("clock", 10, Tick())
    assert env.ts_ns == 50


def test_actor_exception_becomes_one_journaled_internal_error_kill() -> None:
    sink = MemorySink()
    s = Sequencer(sink, [Boom()])
    out = s.submit("clock", 1, Tick()) + s.submit("clock", 2, Tick())
    kills = [e.ev for _, e in out if isinstance(e.ev, KillSwitch)]
    assert kills == [KillSwitch(reason="internal_error", detail="boom: ZeroDivisionError: planted")]
    assert s.failed


inputs = st.lists(
    st.one_of(
        st.builds(lambda t, c, x: ("feed", t, FeedFrame(conn=c, text=x)), st.integers(0, 10**12), st.integers(0, 3), st.text(max_size=8)),
        st.builds(lambda t: ("clock", t, Tick()), st.integers(0, 10**12)),
    ),
    max_size=30,
)


@settings(max_examples=100)
@given(inputs)
def test_same_inputs_twice_give_identical_journal_bytes(script) -> None:
    assert run(script) == run(script)


async def test_run_sequencer_fans_out_records_to_subscribers_then_closes_them() -> None:
    sink = MemorySink()
    sequencer = Sequencer(sink, [Echo()])
    in_tx, in_rx = trio.open_memory_channel(4)
    sub_tx, sub_rx = trio.open_memory_channel(16)
    sub = Subscriber("t", lambda env: isinstance(env.ev, ParseError), sub_tx)
    got = []
    async with trio.open_nursery() as n:
        n.start_soon(lambda: run_sequencer(sequencer, in_rx, flush=sink.flush, subscribers=[sub]))
        async with in_tx:
            await in_tx.send(("feed", 1, FeedFrame(conn=1, text="a")))
            await in_tx.send(("feed", 2, FeedFrame(conn=1, text="b")))
        async for seq, env in sub_rx:
            got.append((seq, env.ev.reason))
    assert got == [(2, "seen 1"), (4, "seen 3")]
    assert isinstance(Envelope, type)
