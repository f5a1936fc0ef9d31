"""Paper-trading and simulated-exchange events (family owned by the paper executors)."""
from __future__ import annotations
