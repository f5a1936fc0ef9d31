"""The portfolio: positions, cash and PnL per token, from fills and book marks.

Units: positions in micro-shares, cash and PnL in micro-dollars, all integers.

- **Which fills count.** A fill counts from its first ``MATCHED`` or ``CONFIRMED`` report; a later report of the
  same fill (same ``(trade_id, client_id)``: e.g. ``CONFIRMED`` after ``MATCHED``) changes nothing. Counting
  ``MATCHED`` at once is the safe side for risk: exposure shows as soon as the exchange matched it. A ``FAILED``
  report reverses a counted fill exactly (the token's ledger is replayed without it, so cash, position and
  realized PnL are as if it had never happened); a ``FAILED`` for a fill never counted changes nothing. Sim and
  paper fills arrive ``CONFIRMED`` once.
- **Cash.** A buy costs ``ceil(price * size / 1e6)``, a sell earns ``floor(price * size / 1e6)``: rounding never
  flatters us (at most 1 micro-dollar per fill). ``cash`` is the token's cumulative cash flow since the start.
- **Realized PnL, average cost.** The open position carries its cost basis (cash paid for a long, minus cash
  received for a short). A fill that reduces the position realizes ``cash of the closed part - basis * closed /
  |position|`` (basis share truncated toward zero; the remainder stays with what is still open, so a position
  closed completely has realized exactly the sum of its cash flows). A fill that flips the position closes the old
  one and opens the new one with the rest (its cash split by the same rounding rule).
- **Mark.** The mid ``(best_bid + best_ask) // 2`` of the token's last valid two-sided ``BookChanged``; before any,
  the token's last fill price. An invalid or one-sided book keeps the last mark.
- **Mark-to-market.** ``mtm = cash + floor(position * mark / 1e6)``: the token's whole PnL if closed at the mark
  (floor: never flattering, for longs or shorts). Summed over a YES/NO pair it values a YES+NO pair at the sum of
  the two mids, which is one dollar when the books mirror each other: a merge, reflected through the marks.
- **Output.** ``Position(token_id, position, cash, realized, mark, mtm)`` after each fill that changes the token,
  and when a token with a non-zero position gets a new mark (never on every frame while flat).
"""
from __future__ import annotations

from typing import ClassVar

from actors.core.base import InvariantError
from events.base import MICRO, Event
from events.codec import Envelope
from events.market import BookChanged
from events.orders import Fill, Position
from events.params import CoreParams


def fill_cash(side: str, price: int, size: int) -> int:
    """Signed cash of a fill: buys pay the amount rounded up, sells receive it rounded down."""
    gross = price * size
    if side == "BUY":
        return (-gross) // MICRO  # floor(-x) = -ceil(x)
    return gross // MICRO


def _div_trunc(a: int, b: int) -> int:
    """a / b rounded toward zero (b > 0)."""
    q = abs(a) // b
    return q if a >= 0 else -q


class TokenAccount:
    """One token's ledger and the state derived from it."""

    __slots__ = ("basis", "cash", "last_price", "ledger", "position", "realized")

    def __init__(self) -> None:
        self.ledger: dict[tuple[str, str], tuple[str, int, int]] = {}
        """Counted fills by (trade_id, client_id) -> (side, price, size), in the order they counted."""
        self.position = 0
        self.cash = 0
        self.basis = 0
        self.realized = 0
        self.last_price = 0

    def apply(self, side: str, price: int, size: int) -> None:
        delta = size if side == "BUY" else -size
        cash = fill_cash(side, price, size)
        pos = self.position
        self.cash += cash
        self.last_price = price
        if pos == 0 or (pos > 0) == (delta > 0):
            self.basis -= cash
            self.position = pos + delta
            return
        closed = min(size, abs(pos))
        close_cash = cash if closed == size else fill_cash(side, price, closed)
        basis_closed = _div_trunc(self.basis * closed, abs(pos))
        self.realized += close_cash - basis_closed
        self.basis -= basis_closed
        self.position = pos + (closed if delta > 0 else -closed)
        rest = size - closed
        if rest > 0:  # flipped: the rest opens a new position
            if self.position != 0 or self.basis != 0:
                raise InvariantError(f"flip left position {self.position} basis {self.basis}")
            self.basis = -(cash - close_cash)
            self.position = pos + delta

    def rebuild(self) -> None:
        self.position = self.cash = self.basis = self.realized = self.last_price = 0
        for side, price, size in self.ledger.values():
            self.apply(side, price, size)


class Portfolio:
    """Positions, cash, realized and mark-to-market PnL per token. See the module docstring."""

    name: ClassVar[str] = "portfolio"
    consumes: ClassVar[tuple[type[Event], ...]] = (Fill, BookChanged)

    def __init__(self, params: CoreParams) -> None:
        self.params = params
        self.accounts: dict[str, TokenAccount] = {}
        self.marks: dict[str, int] = {}

    def step(self, seq: int, env: Envelope) -> list[Event]:
        ev = env.ev
        t = type(ev)
        if t is BookChanged:
            return self._mark(ev)  # type: ignore[arg-type]
        if t is Fill or isinstance(ev, Fill):
            return self._fill(ev)  # type: ignore[arg-type]
        if isinstance(ev, BookChanged):
            return self._mark(ev)
        return []

    def _fill(self, ev: Fill) -> list[Event]:
        acct = self.accounts.get(ev.token_id)
        if acct is None:
            acct = self.accounts[ev.token_id] = TokenAccount()
        key = (ev.trade_id, ev.client_id)
        if ev.status == "FAILED":
            if key not in acct.ledger:
                return []
            del acct.ledger[key]
            acct.rebuild()
            return [self.position(ev.token_id)]
        if key in acct.ledger or ev.size == 0:
            return []
        acct.ledger[key] = (ev.side, ev.price, ev.size)
        acct.apply(ev.side, ev.price, ev.size)
        return [self.position(ev.token_id)]

    def _mark(self, ev: BookChanged) -> list[Event]:
        if not (ev.valid and ev.best_bid > 0 and ev.best_ask > 0):
            return []
        mid = (ev.best_bid + ev.best_ask) // 2
        token = ev.token_id
        marks = self.marks
        if marks.get(token) == mid:
            return []
        marks[token] = mid
        acct = self.accounts.get(token)
        if acct is None or acct.position == 0:
            return []
        return [self.position(ev.token_id)]

    def mark_of(self, token_id: str) -> int:
        mark = self.marks.get(token_id)
        if mark is not None:
            return mark
        acct = self.accounts.get(token_id)
        return acct.last_price if acct is not None else 0

    def position(self, token_id: str) -> Position:
        acct = self.accounts[token_id]
        mark = self.mark_of(token_id)
        mtm = acct.cash + (acct.position * mark) // MICRO
        return Position(token_id=token_id, position=acct.position, cash=acct.cash, realized=acct.realized,
                        mark=mark, mtm=mtm)
