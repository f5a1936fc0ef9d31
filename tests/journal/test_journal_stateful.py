"""Hypothesis state machine: the journal against an in-memory model (B10.2, B10.8 without a fake file system).

Rules: append (random payloads), fill (forces a roll with a tiny segment size), flush, sync, close + reopen
(with another segment size), crash + recover (copy the directory as it is on disk, i.e. a process-crash image,
and open the copy), read (JournalReader) and follow (trio, virtual clock). Invariants: seqs are contiguous,
payloads equal, the writer's digest equals the model's (computed by an independent reference encoder).
"""
from __future__ import annotations

import shutil
import tempfile
from contextlib import aclosing
from hashlib import blake2b
from pathlib import Path

import hypothesis.strategies as st
import trio
import trio.testing
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from tests.journal.journal_testlib import INFO, INFO2, NoSyncIO, ref_digest, ref_frame

from journal import Journal, JournalReader, follow, scan


class JournalMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="pmm-journal-sm-"))
        self.gen = 0
        self.path = self.tmp / "j0"
        self.seg_bytes = 400
        self.j = Journal.create(self.path, INFO, segment_bytes=self.seg_bytes, io=NoSyncIO())
        self.model: list[bytes] = []
        self.digests = [bytes(32)]  # digests[k] = model digest after k records

    def _model_append(self, payload: bytes) -> None:
        self.model.append(payload)
        self.digests.append(blake2b(self.digests[-1] + ref_frame(len(self.model), payload), digest_size=32).digest())

    @rule(payload=st.binary(min_size=1, max_size=300))
    def append(self, payload: bytes) -> None:
        assert self.j.append(payload) == len(self.model) + 1
        self._model_append(payload)

    @rule(payloads=st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=30))
    def append_many(self, payloads: list[bytes]) -> None:
        for p in payloads:
            self.append(p)

    @rule()
    def fill(self) -> None:
        """A record bigger than the segment: the next append must roll."""
        self.append(b"\xab" * (self.seg_bytes + 1))

    @rule()
    def flush(self) -> None:
        self.j.flush()
        assert self.j.flushed_seq == len(self.model)

    @rule()
    def sync(self) -> None:
        self.j.sync()
        assert self.j.synced_seq == self.j.flushed_seq == len(self.model)

    @rule(seg_bytes=st.sampled_from([1, 300, 400, 5000]))
    def close_reopen(self, seg_bytes: int) -> None:
        self.j.close()
        self.seg_bytes = seg_bytes
        self.j, rep = Journal.open(self.path, INFO2, segment_bytes=seg_bytes, io=NoSyncIO())
        assert not rep.torn and rep.last_seq == len(self.model)
        assert rep.digest == self.digests[-1].hex()

    @rule()
    def crash_and_recover(self) -> None:
        """Kill the process: whatever was flushed is on disk, the buffer is gone."""
        flushed = self.j.flushed_seq
        self.gen += 1
        image = self.tmp / f"j{self.gen}"
        shutil.copytree(self.path, image)
        self.j.close()  # (the old directory is abandoned)
        self.path = image
        self.j, rep = Journal.open(image, INFO2, segment_bytes=self.seg_bytes, io=NoSyncIO())
        assert rep.last_seq == flushed and not rep.torn
        del self.model[flushed:]
        del self.digests[flushed + 1:]
        assert rep.digest == self.digests[-1].hex()

    @rule(lo=st.integers(0, 200), span=st.one_of(st.none(), st.integers(0, 50)))
    def read(self, lo: int, span: int | None) -> None:
        n = self.j.flushed_seq
        r = JournalReader(self.path)
        hi = None if span is None else lo + span
        got = [(x.seq, x.payload) for x in r.records(from_seq=lo, to_seq=hi)]
        want = [(s, p) for s, p in enumerate(self.model[:n], 1) if s >= lo and (hi is None or s <= hi)]
        assert got == want
        if hi is None:
            assert r.torn is None
        assert scan(self.path).digest == self.digests[n].hex()

    @precondition(lambda self: self.j.flushed_seq > 0)
    @rule()
    def follow_read(self) -> None:
        n = self.j.flushed_seq

        async def collect() -> list[tuple[int, bytes]]:
            out = []
            with trio.fail_after(60):  # virtual seconds: a stuck follow fails fast
                async with aclosing(follow(self.path)) as records:
                    async for rec in records:
                        out.append((rec.seq, rec.payload))
                        if rec.seq == n:
                            break
            return out

        got = trio.run(collect, clock=trio.testing.MockClock(autojump_threshold=0))
        assert got == list(enumerate(self.model[:n], 1))

    @invariant()
    def writer_matches_model(self) -> None:
        assert self.j.last_seq == len(self.model)
        assert self.j.digest == self.digests[-1].hex()

    def teardown(self) -> None:
        self.j.close()
        assert JournalReader(self.path).digest == ref_digest(self.model)
        shutil.rmtree(self.tmp, ignore_errors=True)


JournalMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_journal_state_machine = JournalMachine.TestCase
