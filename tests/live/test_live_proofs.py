"""The live proofs (``replay/proofs/live.py``) pass and their journals replay bit for bit (as `pmm prove` checks
once the module is listed in ``replay.proofs.ALL_MODULES``)."""
from __future__ import annotations

from pathlib import Path

import pytest

import replay.proofs.live  # noqa: F401  (registers the proofs)
from replay.proofs import PROOFS
from replay.prove import run_one

LIVE_PROOFS = sorted(n for n in PROOFS if n.startswith("live_"))


def test_there_are_live_proofs() -> None:
    assert {"live_preflight_refuses", "live_unknown_outcome_blocks_token", "live_heartbeat_loss_kills",
            "live_starting_inventory"} <= set(LIVE_PROOFS)


@pytest.mark.parametrize("name", LIVE_PROOFS)
def test_live_proof_passes_and_replays(name: str, tmp_path: Path) -> None:
    res = run_one(name, tmp_path)
    assert res.passed, res.detail
