"""Fuzzing (hypothesis) of the three places where bytes from outside enter pmm.

- the market-channel parser (``actors.core.frames.parse_frame``) and the book actor stepping ``FeedFrame``s:
  mutated real frames (sandbox simulator output) and structured garbage never raise, every item and event stays in
  range, and every event the book emits survives the journal's own encode/decode validation;
- the journal reader: random bytes and mutated real segments give records or a ``JournalError`` subclass, never
  another exception, and never a damaged record returned as valid (every record returned is byte-identical to the
  one written at that seq); reopening a damaged journal for writing obeys the same rule;
- the config loader (``pmm.config.load_config``): random and mutated JSON give an ``AppConfig`` or one
  ``ConfigError`` line, never another exception.

``PMM_FUZZ_EXAMPLES=5000`` runs longer campaigns (default 150 examples per test, a few seconds in all).
The optional coverage-guided runner (atheris) lives in ``fuzz/`` when atheris is installable.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.core.book import BookActor
from actors.core.frames import (
    BestBidAsk,
    BookSnapshot,
    FrameError,
    LastTrade,
    PriceChange,
    TickSizeChange,
    Unknown,
    parse_frame,
)
from events.codec import Envelope, decode, encode
from events.market import BookChanged, FeedFrame, FeedStatus, RestBook
from events.params import CoreParams, MarketParams
from journal import HeaderInfo, Journal, JournalError, JournalReader, scan
from pmm.config import AppConfig, ConfigError, load_config

MICRO = 1_000_000
FUZZ = settings(max_examples=int(os.environ.get("PMM_FUZZ_EXAMPLES", "150")), deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.function_scoped_fixture])

# ------------------------------------------------------------------------------------------ real frames


def _sim_frames() -> tuple[MarketParams, list[str]]:
    """An initial dump plus 200 steps of the sandbox simulator (edge scenario: tick-size flips), as wire text."""
    from sandbox.sim import MarketSim

    sim = MarketSim(11, "edge")
    m = sim.markets[0]
    market = MarketParams(condition_id=m.condition_id, yes_token=m.yes_token, no_token=m.no_token)
    texts = [msgspec.json.encode([sim.book_event(m.yes_token), sim.book_event(m.no_token)]).decode()]
    for _ in range(200):
        texts += [msgspec.json.encode(f).decode() for f in sim.step()]
    return market, texts


MARKET, FRAMES = _sim_frames()
PARAMS = CoreParams(markets=(MARKET,))
TOKENS = (MARKET.yes_token, MARKET.no_token)


def _mutate_text(text: str, data: st.DataObject) -> str:
    """One structural or byte-level mutation of a JSON frame."""
    how = data.draw(st.sampled_from(["truncate", "flip", "insert", "replace_value", "drop_key", "swap_number"]))
    if how == "truncate":
        return text[: data.draw(st.integers(0, len(text)))]
    if how == "flip":
        i = data.draw(st.integers(0, max(0, len(text) - 1)))
        ch = data.draw(st.characters(codec="utf-8"))
        return text[:i] + ch + text[i + 1:]
    if how == "insert":
        i = data.draw(st.integers(0, len(text)))
        return text[:i] + data.draw(st.text(max_size=8)) + text[i:]
    try:
        obj = json.loads(text)
    except ValueError:
        return text
    events = obj if isinstance(obj, list) else [obj]
    if not events or not isinstance(events[0], dict):
        return text
    ev = events[data.draw(st.integers(0, len(events) - 1))]
    targets = [ev] + [e for k in ("price_changes", "changes", "bids", "asks") for e in (ev.get(k) if isinstance(ev.get(k), list) else []) if isinstance(e, dict)]
    target = targets[data.draw(st.integers(0, len(targets) - 1))]
    if not target:
        return text
    key = data.draw(st.sampled_from(sorted(target)))
    if how == "drop_key":
        del target[key]
    elif how == "swap_number":
        target[key] = data.draw(st.sampled_from(["-0.1", "1.5", "NaN", "1e3", "0.0000001", "", " 0.5", "0x10",
                                                  "99999999999999999999", "0.5.5", "٣", "-0", "inf"]))
    else:
        target[key] = data.draw(json_values)
    return json.dumps(obj)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=12), kids, max_size=5),
    max_leaves=15,
)


def _check_items(items: list) -> None:
    assert isinstance(items, list)
    for it in items:
        if isinstance(it, FrameError):
            assert len(it.excerpt) <= 200 and isinstance(it.reason, str)
        elif isinstance(it, BookSnapshot):
            for p, s in (*it.bids, *it.asks):
                assert 0 <= p <= MICRO and 0 < s <= 10**15
        elif isinstance(it, PriceChange):
            for u in it.updates:
                assert 0 <= u.price <= MICRO and 0 <= u.size <= 10**15 and u.side in ("BUY", "SELL")
        elif isinstance(it, TickSizeChange):
            assert 0 < it.new_tick <= MICRO
        elif isinstance(it, LastTrade):
            assert 0 <= it.price <= MICRO and it.size >= 0
        elif isinstance(it, BestBidAsk):
            assert it.best_bid is None or 0 <= it.best_bid <= MICRO
        elif isinstance(it, Unknown):
            assert len(it.excerpt) <= 200


@FUZZ
@given(st.data())
def test_parse_frame_on_mutated_real_frames_never_raises_and_stays_in_range(data: st.DataObject) -> None:
    text = FRAMES[data.draw(st.integers(0, len(FRAMES) - 1))]
    for _ in range(data.draw(st.integers(1, 3))):
        text = _mutate_text(text, data)
    _check_items(parse_frame(text))


@FUZZ
@given(st.one_of(json_values.map(json.dumps), st.binary(max_size=300).map(lambda b: b.decode("utf-8", "replace"))))
def test_parse_frame_on_garbage_never_raises(text: str) -> None:
    _check_items(parse_frame(text))


@FUZZ
@given(st.data())
def test_book_actor_on_mutated_frame_streams_never_raises_and_emits_valid_events(data: st.DataObject) -> None:
    book = BookActor(PARAMS)
    n = data.draw(st.integers(5, 40))
    start = data.draw(st.integers(0, len(FRAMES) - n))
    conn, ts, seq = 1, 1_000, 0
    stream: list[object] = [FeedStatus(conn=1, state="connected"), FeedFrame(conn=1, text=FRAMES[0])]
    for text in FRAMES[start:start + n]:
        r = data.draw(st.integers(0, 19))
        if r < 4:
            text = _mutate_text(text, data)
        if r == 5:
            conn += data.draw(st.integers(0, 1))
            stream.append(FeedStatus(conn=conn, state=data.draw(st.sampled_from(["connected", "disconnected"]))))
        if r == 6:
            body = data.draw(st.sampled_from(FRAMES))
            stream.append(RestBook(token_id=data.draw(st.sampled_from(TOKENS)), status=data.draw(
                st.sampled_from([200, 200, 404, 0])), body=_mutate_text(body, data)))
        stream.append(FeedFrame(conn=data.draw(st.sampled_from([conn, conn, conn, max(0, conn - 1)])), text=text))
    for ev in stream:
        seq += 1
        ts += 1_000
        out = book.step(seq, Envelope(ts_ns=ts, src="feed", cause=0, ev=ev))
        for e in out:
            back = decode(encode(Envelope(ts_ns=ts, src="book", cause=seq, ev=e)))  # the journal's bounds hold
            assert back.ev == e
            if isinstance(e, BookChanged):
                assert e.token_id in TOKENS
                if e.valid and e.best_bid and e.best_ask:
                    assert e.best_bid < e.best_ask, e  # a valid book is never crossed
                assert 0 <= e.best_bid <= MICRO and 0 <= e.best_ask <= MICRO
        for token in TOKENS:
            tb = book.books.get(token)
            assert tb is not None
            if tb.valid and tb.best_bid() and tb.best_ask():
                assert tb.best_bid()[0] < tb.best_ask()[0]


# ------------------------------------------------------------------------------------------ journal reader

INFO = HeaderInfo(run_id="fuzz", schema_version=1, schema_fingerprint="f" * 64, config_hash="c" * 64, seed=1,
                  created_ns=1)
PAYLOADS = [bytes([i % 251 + 1]) * (1 + (i * 37) % 300) for i in range(60)]


def _real_journal(root: Path, segment_bytes: int) -> Path:
    path = root / "j"
    with Journal.create(path, INFO, segment_bytes=segment_bytes) as j:
        for p in PAYLOADS:
            j.append(p)
    return path


_TEMPLATES: dict[int, Path] = {}


def _template(segment_bytes: int) -> Path:
    if segment_bytes not in _TEMPLATES:
        root = Path(tempfile.mkdtemp(prefix="pmm-fuzz-j-"))
        atexit.register(shutil.rmtree, root, True)
        _TEMPLATES[segment_bytes] = _real_journal(root, segment_bytes)
    return _TEMPLATES[segment_bytes]


def _read_all(path: Path) -> list[tuple[int, bytes]]:
    reader = JournalReader(path)
    return [(r.seq, bytes(r.payload)) for r in reader.records()]


def _assert_prefix_of_originals(records: list[tuple[int, bytes]]) -> None:
    for i, (seq, payload) in enumerate(records):
        assert seq == i + 1
        assert payload == PAYLOADS[seq - 1], f"record seq {seq} returned damaged"


@FUZZ
@given(st.binary(max_size=2000), st.booleans())
def test_journal_reader_on_random_bytes_gives_records_or_a_journal_error(blob: bytes, with_magic: bool) -> None:
    d = Path(tempfile.mkdtemp(prefix="pmm-fuzz-r-"))
    try:
        data = (b"\x89PMJ\r\n\x1a\n" + blob) if with_magic else blob
        (d / "seg-00000000000000000001.pmj").write_bytes(data)
        for op in (_read_all, scan):
            try:
                op(d)
            except JournalError:
                pass
    finally:
        shutil.rmtree(d, ignore_errors=True)


@FUZZ
@given(st.data())
def test_journal_reader_on_mutated_real_segments_never_returns_a_damaged_record(data: st.DataObject) -> None:
    segment_bytes = data.draw(st.sampled_from([1 << 20, 2048]))  # one segment, or several (the chain too)
    d = Path(tempfile.mkdtemp(prefix="pmm-fuzz-m-"))
    try:
        path = d / "j"
        shutil.copytree(_template(segment_bytes), path)
        segs = sorted(p for p in path.iterdir() if p.name.startswith("seg-"))
        for _ in range(data.draw(st.integers(1, 3))):
            seg = segs[data.draw(st.integers(0, len(segs) - 1))]
            buf = bytearray(seg.read_bytes())
            how = data.draw(st.sampled_from(["flip", "truncate", "zero", "insert", "delete", "dup_tail"]))
            i = data.draw(st.integers(0, max(0, len(buf) - 1)))
            if how == "flip" and buf:
                buf[i] ^= data.draw(st.integers(1, 255))
            elif how == "truncate":
                del buf[i:]
            elif how == "zero":
                n = data.draw(st.integers(1, 64))
                buf[i:i + n] = bytes(len(buf[i:i + n]))
            elif how == "insert":
                buf[i:i] = data.draw(st.binary(min_size=1, max_size=32))
            elif how == "delete":
                del buf[i:i + data.draw(st.integers(1, 32))]
            else:
                buf += buf[i:]
            seg.write_bytes(bytes(buf))
        try:
            _assert_prefix_of_originals(_read_all(path))
        except JournalError:
            pass
        try:
            scan(path)
        except JournalError:
            pass
        # reopening for writing (recovery) obeys the same rule, and what it keeps reads back intact
        try:
            j, report = Journal.open(path, INFO, segment_bytes=segment_bytes)
        except JournalError:
            return
        j.close()
        kept = _read_all(path)
        _assert_prefix_of_originals(kept)
        assert len(kept) == report.last_seq
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------------------------------ config loader


def _full_config() -> dict:
    return msgspec.to_builtins(AppConfig())


def _mutate_config(obj: dict, data: st.DataObject) -> dict:
    paths: list[tuple[dict, str]] = []

    def walk(d: dict) -> None:
        for k, v in d.items():
            paths.append((d, k))
            if isinstance(v, dict):
                walk(v)

    walk(obj)
    for _ in range(data.draw(st.integers(1, 4))):
        parent, key = paths[data.draw(st.integers(0, len(paths) - 1))]
        if key not in parent:
            continue
        how = data.draw(st.sampled_from(["replace", "delete", "unknown", "string", "big", "negative"]))
        if how == "replace":
            parent[key] = data.draw(json_values)
        elif how == "delete":
            del parent[key]
        elif how == "unknown":
            parent[key + data.draw(st.text(min_size=1, max_size=3))] = data.draw(json_values)
        elif how == "string":
            parent[key] = str(parent[key])
        elif how == "big":
            parent[key] = 10**30
        else:
            parent[key] = -1
    return obj


def _load(raw: bytes, tmp: Path) -> None:
    f = tmp / "config.json"
    f.write_bytes(raw)
    try:
        cfg = load_config(f)
    except ConfigError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg, msg
        assert msg.startswith(str(f)), msg
        return
    assert isinstance(cfg, AppConfig)


@pytest.fixture(scope="module")
def cfg_dir() -> Path:
    d = Path(tempfile.mkdtemp(prefix="pmm-fuzz-c-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@FUZZ
@given(data=st.data())
def test_config_loader_on_mutated_configs_gives_a_config_or_one_error_line(data: st.DataObject, cfg_dir: Path) -> None:
    obj = _mutate_config(_full_config(), data)
    raw = json.dumps(obj).encode()
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    _load(raw, cfg_dir)


@FUZZ
@given(raw=st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200),
                     st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_config_loader_on_random_input_gives_a_config_or_one_error_line(raw: bytes, cfg_dir: Path) -> None:
    _load(raw, cfg_dir)
