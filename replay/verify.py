"""``pmm replay verify``: re-derive every core output from the recorded inputs and compare bytes.

Inputs are the records with ``cause == 0`` (from edge actors). They are fed, in seq order, to a fresh core built
from the journal's own ``RunStarted``; every record the core appends is compared byte for byte with the recorded
one at the same seq. The first difference is reported with the seq, the actor and both events.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from actors.sequencer import Sequencer
from actors.version import core_of, run_version
from actors.wiring import build_core
from events.codec import Envelope, decode_head
from events.control import RunStarted
from journal import JournalReader, Record
from replay.journal_io import check_schema, decode_record


@dataclass
class Mismatch:
    seq: int
    actor: str
    recorded: Envelope | None
    replayed: Envelope | None
    reason: str


@dataclass
class VerifyResult:
    path: Path
    records: int = 0
    inputs: int = 0
    mismatch: Mismatch | None = None
    notes: list[str] = field(default_factory=list)
    recorded_by: str = ""
    """``RunStarted.version`` of the journal: the pmm version and core fingerprint that wrote it."""
    replayed_by: str = ""
    """The same for the code that replayed it."""

    @property
    def same_core(self) -> bool | None:
        """Whether the journal was written by this core (None: the journal does not say)."""
        recorded = core_of(self.recorded_by)
        return None if not recorded else recorded == core_of(self.replayed_by)

    @property
    def ok(self) -> bool:
        return self.mismatch is None


class _Diverged(Exception):
    def __init__(self, mismatch: Mismatch) -> None:
        self.mismatch = mismatch


class _RecordingEnded(Exception):
    def __init__(self, env: Envelope) -> None:
        self.env = env


class _Comparer:
    """A record sink that, instead of writing, checks each record against the recording.

    Recorded records are decoded lazily: a derived record only needs its bytes (replay's bytes must equal
    them), so only inputs, and records named in a mismatch, are decoded in full. ``decode_head`` (source and
    cause, the event skipped) tells an input from a derived record.
    """

    def __init__(self, reader: JournalReader) -> None:
        self._it = reader.records()
        self._peeked: Record | None = None
        self.count = 0

    def peek(self) -> Record | None:
        if self._peeked is None:
            self._peeked = next(self._it, None)
        return self._peeked

    def append(self, payload: bytes, env: Envelope) -> int:
        rec = self._peeked
        if rec is None:
            rec = next(self._it, None)
            if rec is None:
                raise _RecordingEnded(env)
        self._peeked = None
        self.count += 1
        if rec.payload != payload:
            renv = envelope_of(rec)
            actor = env.src if renv.cause == 0 or env.src == renv.src else f"{renv.src} (replay: {env.src})"
            raise _Diverged(Mismatch(rec.seq, actor, renv, env, "replayed event differs from the recorded one"))
        return rec.seq


def envelope_of(rec: Record) -> Envelope:
    return decode_record(rec)


def verify(path: Path) -> VerifyResult:
    """Replay the journal at ``path``; the result says whether it reproduced bit for bit."""
    path = Path(path)
    reader = JournalReader(path)
    result = VerifyResult(path)
    note = check_schema(reader)
    if note:
        result.notes.append(note)
    comparer = _Comparer(reader)
    first = comparer.peek()
    if first is None:
        result.notes.append("journal is empty")
        return result
    env0 = envelope_of(first)
    if not isinstance(env0.ev, RunStarted) or env0.cause != 0:
        raise ValueError(f"{path}: record seq {first.seq} is not RunStarted: not a pmm session journal")
    result.recorded_by, result.replayed_by = env0.ev.version, run_version()
    sequencer = Sequencer(comparer, build_core(env0.ev.params))
    submit = sequencer.submit
    peek = comparer.peek
    inputs = 0
    try:
        while (rec := peek()) is not None:
            if decode_record(rec, decode_head).cause != 0:
                env = envelope_of(rec)
                result.mismatch = Mismatch(
                    rec.seq, env.src, env, None, "recorded event was not produced by replay (replay produced fewer)"
                )
                break
            env = envelope_of(rec)
            inputs += 1
            submit(env.src, env.ts_ns, env.ev)
    except _Diverged as d:
        result.mismatch = d.mismatch
    except _RecordingEnded as e:
        result.notes.append(
            f"the journal ends inside the cascade of its last input (a crash or cut tail); "
            f"replay would next append a {type(e.env.ev).__name__} from {e.env.src}"
        )
    result.inputs = inputs
    result.records = comparer.count
    if reader.torn is not None:
        result.notes.append(f"torn tail not read: {reader.torn}")
    return result
