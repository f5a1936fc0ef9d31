"""The status writer (a sink): ``status.json``, rewritten atomically, for the operator and observers.

The status is a projection of the journal (``SessionStats``), so it can always be rebuilt; it records
``last_seq``. Written as temp file in the same folder -> fsync -> ``os.replace``, so a reader sees the old file
or the new one, never a partial one. Readers judge liveness by ``written_at_ns``. Nothing secret is ever in it:
it is built only from journaled events, which hold no secrets.
"""
from __future__ import annotations

import os
from pathlib import Path

import msgspec

from actors.sink.stats import MICRO, SessionStats

STATUS_VERSION = 1


class MarketStatus(msgspec.Struct, kw_only=True):
    token_id: str
    best_bid: float | None
    best_ask: float | None
    mid: float | None
    book_valid: bool
    position: float
    pnl: float


class QuoteStatus(msgspec.Struct, kw_only=True):
    token_id: str
    side: str
    price: float
    size: float


class Status(msgspec.Struct, kw_only=True):
    status_version: int = STATUS_VERSION
    mode: str
    version: str
    run_id: str
    pid: int
    state: str
    """running, stopping, stopped, crashed."""
    started_at_ns: int
    written_at_ns: int
    uptime_s: float
    feed_state: str
    feed_conn: int
    last_frame_age_s: float | None
    frames: int
    reconnects: int
    parse_errors: int
    trading_state: str
    kill_switch: str
    """Empty when not tripped; otherwise the reason."""
    markets: list[MarketStatus]
    quotes: list[QuoteStatus]
    open_orders: int
    fills: int
    position: float
    pnl: float
    reward_score: float
    churn_places_per_min: int
    churn_cancels_per_min: int
    risk_rejects: dict[str, int]
    exchange_errors: int
    preflight: list[str]
    journal: str
    last_seq: int


def build_status(
    stats: SessionStats, *, now_ns: int, version: str, journal: Path, state: str, preflight: list[str] | None = None
) -> Status:
    def px(v: int) -> float | None:
        return v / MICRO if v else None

    markets = []
    for token, v in sorted(stats.tokens.items()):
        mid = (v.best_bid + v.best_ask) / 2 / MICRO if v.best_bid and v.best_ask else None
        markets.append(MarketStatus(token_id=token, best_bid=px(v.best_bid), best_ask=px(v.best_ask), mid=mid,
                                    book_valid=v.valid, position=v.position / MICRO, pnl=v.mtm / MICRO))
    quotes = [
        QuoteStatus(token_id=q.token_id, side=q.side, price=q.price / MICRO, size=q.size / MICRO)
        for _, d in sorted(stats.desired.items()) for q in d.quotes
    ]
    churn = stats.churn
    return Status(
        mode=stats.mode, version=version, run_id=stats.run_id, pid=os.getpid(), state=state,
        started_at_ns=stats.started_ns, written_at_ns=now_ns, uptime_s=round((now_ns - stats.started_ns) / 1e9, 3),
        feed_state=stats.conn_state, feed_conn=stats.conn,
        last_frame_age_s=round((now_ns - stats.last_frame_ns) / 1e9, 3) if stats.last_frame_ns else None,
        frames=stats.frames, reconnects=stats.reconnects, parse_errors=stats.parse_errors,
        trading_state=stats.trading_state, kill_switch=stats.halted, markets=markets, quotes=quotes,
        open_orders=len(stats.orders), fills=stats.fills, position=stats.position_shares, pnl=stats.pnl,
        reward_score=sum(stats.reward_score.values()) / MICRO,
        churn_places_per_min=churn.places if churn else 0, churn_cancels_per_min=churn.cancels if churn else 0,
        risk_rejects=dict(sorted(stats.reject_codes.items())), exchange_errors=stats.exchange_errors,
        preflight=list(preflight or []), journal=str(journal), last_seq=stats.last_seq,
    )


_encoder = msgspec.json.Encoder()


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically: temp file in the same folder, fsync, rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_status(path: Path, status: Status) -> None:
    write_atomic(path, msgspec.json.format(_encoder.encode(status), indent=2) + b"\n")


def read_status(path: Path) -> Status:
    return msgspec.json.decode(Path(path).read_bytes(), type=Status)


def publish_status(folder: Path, status: Status, with_summary_line: bool) -> None:
    """Copy the status into a publish folder and, when asked, append one line to its summary.jsonl."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_status(folder / "status.json", status)
    if with_summary_line:
        with open(folder / "summary.jsonl", "ab") as f:
            f.write(_encoder.encode(status) + b"\n")
