"""`pmm prove`: every proof passes, the summary is machine-readable, and two runs give identical journals."""
from __future__ import annotations

import json
from pathlib import Path

from pmm.cli import main


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != "LOCK"}


def test_prove_passes_writes_summary_and_is_byte_identical_across_runs(tmp_path: Path, capsys) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["prove", "--out", str(a)]) == 0, capsys.readouterr().out
    assert main(["prove", "--out", str(b)]) == 0
    summary = json.loads((a / "summary.json").read_text())
    assert summary["passed"] is True and summary["failed"] == 0
    names = {p["name"] for p in summary["proofs"]}
    for required in ("journal_roundtrip", "replay_identical", "kill_switch_cancels_everything",
                     "rejected_order_never_reaches_sink"):
        assert required in names
    for p in summary["proofs"]:
        assert set(p) == {"name", "passed", "detail", "journal"} and p["passed"] and p["detail"]
    ja, jb = tree_bytes(a / "journals"), tree_bytes(b / "journals")
    assert ja and ja == jb


def test_prove_when_unknown_proof_named_then_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["prove", "--out", str(tmp_path / "x"), "--only", "no_such_proof"]) == 2
    assert "unknown proof" in capsys.readouterr().err
