"""The one place where actors are assembled. Modes are wiring, not code paths.

``build_core`` gives the same core actors, in the same declared order, to every mode, to every proof and to
replay: book -> quoter -> order manager -> risk gate -> executor core (paper recorder, simulated exchange or the live parser)
-> portfolio -> metrics. Edge and sink actors are plugged in around it by the session runners (``actors.session``).
"""
from __future__ import annotations

from actors.core.base import CoreActor
from events.params import CoreParams

CORE_ORDER = ("book", "quoter", "orders", "risk", "exec", "portfolio", "metrics")
"""Declared delivery order of the core actors (the ``name`` of each)."""


def build_core(params: CoreParams) -> list[CoreActor]:
    """Fresh core actors for ``params``. Everything they will ever emit follows from params and their inputs."""
    from actors.core.book import BookActor
    from actors.core.live import LiveExec
    from actors.core.metrics import MetricsActor
    from actors.core.orders import OrderManager
    from actors.core.paper import PaperRecorder
    from actors.core.portfolio import Portfolio
    from actors.core.quoter import QuoterActor
    from actors.core.risk import RiskGate
    from actors.core.sim_exchange import SimExchange

    book = BookActor(params)
    executor: CoreActor
    if params.fills == "sim":
        executor = SimExchange(params, book.books)
    elif params.fills == "none":
        executor = PaperRecorder(params)
    else:  # live: the exchange is reached by sinks and edges; the core parses what they recorded
        executor = LiveExec(params)
    actors: list[CoreActor] = [
        book,
        QuoterActor(params, book.books),
        OrderManager(params),
        RiskGate(params),
        executor,
        Portfolio(params),
        MetricsActor(params),
    ]
    names = tuple(a.name for a in actors)
    if names != CORE_ORDER:
        raise RuntimeError(f"core actors out of declared order: {names} != {CORE_ORDER}")
    return actors

