"""Risk-gate events beyond the shared order vocabulary in ``events.orders`` (family owned by the risk gate)."""
from __future__ import annotations
