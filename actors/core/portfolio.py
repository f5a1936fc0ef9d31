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
- **Starting inventory** (``StartingInventory``, live only, once, before any fill; ``ok`` only). Tokens the
  wallet already held count as position from the start. What they cost is not known (bought in an earlier run, or
  elsewhere), so they are entered as bought at the token's **first valid mark** (a buy of that many shares at that
  mid, with the usual cash rounding): the run's PnL starts at 0 (at most 1 micro-dollar below) rather than at a
  windfall of their whole value, and from then on it moves with the mark and the trades like any other position.
  Until that mark they are a position with no cash and no basis (``mtm`` 0: nothing is claimed for them). Selling
  them realizes against that entry. Because the entry is the first of the token's ledger, a ``FAILED`` rebuild
  starts from it. A ``Position`` is emitted for each held token at once (so the quoter and the risk gate see it)
  and again at its first mark. Absent (paper, older journals): every position starts at 0, as before.
- **Output.** ``Position(token_id, position, cash, realized, mark, mtm)`` after each fill that changes the token,
  when a token with a non-zero position gets a new mark (never on every frame while flat), and for the starting
  inventory (above).
"""
from __future__ import annotations

from typing import ClassVar

from actors.core.base import InvariantError
from events.base import MICRO, Event
from events.codec import Envelope
from events.live import StartingInventory
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

    __slots__ = ("basis", "cash", "entry", "last_price", "ledger", "position", "realized", "start")

    def __init__(self) -> None:
        self.ledger: dict[tuple[str, str], tuple[str, int, int]] = {}
        """Counted fills by (trade_id, client_id) -> (side, price, size), in the order they counted."""
        self.position = 0
        self.cash = 0
        self.basis = 0
        self.realized = 0
        self.last_price = 0
        self.start = 0
        """Shares held at start (``StartingInventory``)."""
        self.entry: int | None = None
        """The price the starting inventory is entered at (its first valid mark); None: not marked yet."""

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
        if self.start:
            if self.entry is None:
                self.position = self.start  # held, not priced yet: no cash, no basis
            else:
                self.apply("BUY", self.entry, self.start)
        for side, price, size in self.ledger.values():
            self.apply(side, price, size)


class Portfolio:
    """Positions, cash, realized and mark-to-market PnL per token. See the module docstring."""

    name: ClassVar[str] = "portfolio"
    consumes: ClassVar[tuple[type[Event], ...]] = (Fill, BookChanged, StartingInventory)

    def __init__(self, params: CoreParams) -> None:
        self.params = params
        self.accounts: dict[str, TokenAccount] = {}
        self.marks: dict[str, int] = {}
        self.inventory = False

    def step(self, seq: int, env: Envelope) -> list[Event]:
        ev = env.ev
        t = type(ev)
        if t is BookChanged:
            return self._mark(ev)  # type: ignore[arg-type]
        if t is Fill or isinstance(ev, Fill):
            return self._fill(ev)  # type: ignore[arg-type]
        if isinstance(ev, BookChanged):
            return self._mark(ev)
        if isinstance(ev, StartingInventory):
            return self._inventory(ev)
        return []

    def _inventory(self, ev: StartingInventory) -> list[Event]:
        if self.inventory:
            raise InvariantError("portfolio: a second StartingInventory in one run")
        self.inventory = True
        if not ev.ok:
            return []
        out: list[Event] = []
        for b in ev.balances:
            if b.balance <= 0:
                continue
            acct = self.accounts.get(b.token_id)
            if acct is None:
                acct = self.accounts[b.token_id] = TokenAccount()
            if acct.ledger or acct.start:
                raise InvariantError(f"portfolio: starting inventory of {b.token_id} after its fills")
            acct.start = b.balance
            acct.entry = self.marks.get(b.token_id)  # a book came first (not in the live boot order): entered now
            acct.rebuild()
            out.append(self.position(b.token_id))
        return out

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
        if acct is None:
            return []
        if acct.start and acct.entry is None:  # the starting inventory's first mark: entered at it
            acct.entry = mid
            acct.rebuild()
            return [self.position(token)]
        if acct.position == 0:
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
