"""The starting inventory of a live session (docs/live.md, "Starting inventory"): the outcome tokens the wallet holds
at start, read from the venue, compared with what the previous run of this wallet ended with.

Edge code: it reads the venue (``GET /balance-allowance?asset_type=CONDITIONAL&token_id=``, through
``ExchangeRest.balance_allowance``) and earlier journals on disk. What it finds enters the journal once, as the
input ``StartingInventory``; the core (risk gate, portfolio) starts its positions from it.

- **Balances.** One call per allow-listed token (YES and NO). The answer's ``balance`` is the token amount in
  micro-shares (6 decimals, as the venue writes it: a string of digits). Anything else, or a failed call, means
  the balance is unknown, and the session refuses to start (fail closed). The calls go through the startup
  cleanup's patience (425 and 429 waited out up to its deadline).
- **What the previous run ended with** (``previous_positions``). The newest run in the journal dir of this wallet
  (same address, funder and exchange) that journaled a ``StartingInventory`` with ``ok``: its balances, each
  replaced by the token's last ``Position`` in that run (the portfolio's position includes the starting
  inventory). Runs of other modes or wallets are skipped, and so are runs of this wallet that traded nothing
  without an ok inventory (refused starts). A run of this wallet that traded but has no inventory (recorded
  before this existed) ends the search: its absolute positions are not known, nothing is compared. A journal that
  cannot be read ends it too (``prior_halt`` halts the session for that).
- **The comparison** (``judge``). A token whose venue balance differs from the expected position by more than
  ``live.position_tolerance`` means fills happened while pmm was not watching (a crash, orders that rested until
  the venue's dead-man switch, a trade by hand): the session refuses to start with one line naming the token,
  expected and found. The operator looks, then starts once with ``--accept-positions`` (journaled in ``detail``).
"""
from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from actors.edge.exchange import ExchangeError, ExchangeRest
from events.base import Size
from events.live import StartingInventory, TokenBalance
from events.units import shares

T = TypeVar("T")
Call = Callable[[Callable[[], Awaitable[T]]], Awaitable[T]]
BALANCE = re.compile(r"([0-9]{1,16})(?:\.0+)?")
"""Base units (micro-shares) as the venue writes them: digits ("12500000"); a zero fraction ("12500000.0") is read
too (preflight's collateral check allows one). Anything else is unreadable."""
MAX_BALANCE = 10**15
"""The largest balance ``events.base.Size`` holds (a billion shares)."""
ACCEPT_FLAG = "--accept-positions"


def parse_balance(res: dict[str, Any], token: str) -> int:
    """The ``balance`` of a ``/balance-allowance`` answer in micro-shares. Raises ``ExchangeError`` (one line)."""
    raw = res.get("balance")
    m = BALANCE.fullmatch(raw) if isinstance(raw, str) else None
    if m is not None:
        value = int(m.group(1))
    elif isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    else:
        raise ExchangeError(f"GET /balance-allowance: token {token}: unreadable balance {str(raw)[:40]!r}")
    if not (0 <= value <= MAX_BALANCE):
        raise ExchangeError(f"GET /balance-allowance: token {token}: balance {value} out of range")
    return value


async def read_balances(rest: ExchangeRest, tokens: list[str], call: Call[Any]) -> tuple[TokenBalance, ...]:
    """The CONDITIONAL balance of every token, in order. Raises ``ExchangeError`` naming the token it could not read."""
    out: list[TokenBalance] = []
    for token in tokens:
        try:
            res = await call(lambda t=token: rest.balance_allowance("CONDITIONAL", t))  # type: ignore[misc]
        except ExchangeError as exc:
            raise ExchangeError(f"cannot read the balance of token {token}: {exc}", exc.status) from None
        out.append(TokenBalance(token_id=token, balance=parse_balance(res, token)))
    return tuple(out)


@dataclass
class KnownPositions:
    """What the previous run of this wallet ended with: ``positions`` (token -> micro-shares), or None (unknown)."""

    run: str = ""
    positions: dict[str, int] | None = None
    note: str = "no earlier run of this wallet"
    skipped: list[str] = field(default_factory=list)


def previous_positions(journal_root: Path, *, address: str, funder: str, exchange: str) -> KnownPositions:
    """See the module docstring. Reads journals; never raises for a journal it cannot read (says so)."""
    from events.control import RunStarted
    from events.live import LiveIdentity, OrderSigned
    from events.orders import Fill, Position
    from journal import JournalError, JournalReader
    from replay.journal_io import read_envelopes

    runs = sorted((p for p in journal_root.iterdir() if p.is_dir()), reverse=True) if journal_root.is_dir() else []
    skipped: list[str] = []
    for run in runs:
        inv: StartingInventory | None = None
        last: dict[str, int] = {}
        traded = mine = False
        try:
            for seq, _payload, env in read_envelopes(JournalReader(run)):
                ev = env.ev
                if seq == 1:
                    if not (isinstance(ev, RunStarted) and ev.mode == "live"):
                        break
                elif isinstance(ev, LiveIdentity):
                    mine = (ev.address.lower() == address.lower() and ev.funder.lower() == funder.lower()
                            and ev.exchange == exchange)
                    if not mine:
                        break
                elif isinstance(ev, StartingInventory):
                    inv = ev
                elif isinstance(ev, Position):
                    last[ev.token_id] = ev.position
                elif isinstance(ev, (Fill, OrderSigned)):
                    traded = True
        except (JournalError, ValueError, OSError) as exc:
            return KnownPositions(run.name, None, f"the journal of run {run.name} cannot be read ({exc})", skipped)
        if not mine:
            continue
        if inv is not None and inv.ok:
            positions = {b.token_id: b.balance for b in inv.balances}
            positions.update(last)
            return KnownPositions(run.name, positions, f"as run {run.name} ended", skipped)
        if traded:
            return KnownPositions(run.name, None, f"run {run.name} traded without recording its starting positions",
                                  skipped)
        skipped.append(run.name)  # a refused start: it traded nothing; the one before it still tells
    return KnownPositions("", None, "no earlier run of this wallet", skipped)


def mismatches(expected: dict[str, int], found: tuple[TokenBalance, ...], tolerance: int) -> list[str]:
    """One phrase per token whose balance differs from the expected position by more than ``tolerance``."""
    out = []
    for b in found:
        want = expected.get(b.token_id)
        if want is not None and not (abs(b.balance - want) <= tolerance):
            out.append(f"token {b.token_id}: expected {shares(want)}, found {shares(b.balance)}")
    return out


def held_text(balances: tuple[TokenBalance, ...]) -> str:
    held = [f"{shares(b.balance)} of {b.token_id[:10]}{'…' if len(b.token_id) > 10 else ''}"
            for b in balances if b.balance > 0]
    return f"holds {', '.join(held)}" if held else "holds no outcome token of the markets"


def judge(balances: tuple[TokenBalance, ...], known: KnownPositions, tolerance: Size,
          accept: bool = False) -> StartingInventory:
    """The ``StartingInventory`` to journal: ok unless a balance differs from what the previous run ended with by
    more than ``tolerance`` (and the operator did not accept it)."""
    expected = known.positions
    exp = tuple(TokenBalance(token_id=b.token_id, balance=expected[b.token_id]) for b in balances
                if expected is not None and b.token_id in expected)
    held = held_text(balances)
    if expected is None:
        detail, ok = f"{held}; not compared: {known.note}", True
    else:
        bad = mismatches(expected, balances, tolerance)
        if not bad:
            detail, ok = f"{held}; as run {known.run} ended (tolerance {shares(tolerance)})", True
        elif accept:
            detail, ok = (f"{held}; differs from the end of run {known.run}: {'; '.join(bad)} "
                          f"(tolerance {shares(tolerance)}); accepted by the operator ({ACCEPT_FLAG})"), True
        else:
            detail, ok = (f"positions differ from the end of run {known.run}: {'; '.join(bad)} (tolerance "
                          f"{shares(tolerance)}): fills happened while pmm was not watching? Look at the wallet's "
                          f"trades, then start with {ACCEPT_FLAG}"), False
    return StartingInventory(balances=balances, ok=ok, detail=detail, expected=exp, expected_run=known.run,
                             tolerance=tolerance)


async def starting_inventory(rest: ExchangeRest, tokens: list[str], *, call: Call[Any], known: KnownPositions,
                             tolerance: Size, accept: bool = False, waited: Callable[[], str] = lambda: "",
                             ) -> StartingInventory:
    """Read every balance (``call``: the startup patience) and judge them. An unreadable one: a not-ok event."""
    try:
        balances = await read_balances(rest, tokens, call)
    except ExchangeError as exc:
        w = waited()
        return StartingInventory(balances=(), ok=False, detail=f"{exc}{f' ({w})' if w else ''}",
                                 expected_run=known.run, tolerance=tolerance)
    inv = judge(balances, known, tolerance, accept)
    w = waited()
    if w:
        inv = StartingInventory(balances=inv.balances, ok=inv.ok, detail=f"{inv.detail} ({w})", expected=inv.expected,
                                expected_run=inv.expected_run, tolerance=inv.tolerance)
    return inv
