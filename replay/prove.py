"""``pmm prove``: run every registered proof through the real core and write the artifacts.

Output, replaced on every run: ``<out>/summary.json`` (one entry per proof: name, passed, detail, journal) and
``<out>/journals/<proof>/`` (each proof's journal). Every proof journal must also pass ``replay verify``: a proof
whose journal does not replay bit for bit fails. Nothing here reads a clock, so two runs give byte-identical
journals.
"""
from __future__ import annotations

import importlib
import shutil
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import msgspec

from replay.proofs import ALL_MODULES, PROOFS, ProofContext, ProofFailed
from replay.verify import verify


@dataclass
class ProofResult:
    name: str
    passed: bool
    detail: str
    journal: str


def load_proofs() -> list[str]:
    """Import every proof module; return import failures as messages (each is reported as a failed proof)."""
    errors = []
    for mod in ALL_MODULES:
        try:
            importlib.import_module(mod)
        except Exception as exc:
            errors.append(f"{mod}: {type(exc).__name__}: {exc}")
    return errors


def run_one(name: str, journals: Path | None) -> ProofResult:
    ctx = ProofContext(name, journals)
    try:
        detail = PROOFS[name](ctx)
        passed = True
    except ProofFailed as exc:
        passed, detail = False, f"FAILED: {exc}"
    except Exception as exc:
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        passed, detail = False, f"ERROR: {type(exc).__name__}: {exc} ({Path(tb.filename).name}:{tb.lineno})"
    paths = ctx.close()
    if passed:
        for p in paths:
            res = verify(p)
            if not res.ok:
                m = res.mismatch
                passed = False
                detail = f"journal {p.name} does not replay: first difference at seq {m.seq} ({m.actor}): {m.reason}"
                break
    rel = ", ".join(str(p) for p in paths)
    return ProofResult(name, passed, detail, rel)


def run_proofs(out: Path, *, only: list[str] | None = None) -> list[ProofResult]:
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    journals = out / "journals"
    journals.mkdir(parents=True)
    results = [ProofResult(f"import:{e.split(':')[0]}", False, f"ERROR: {e}", "") for e in load_proofs()]
    names = list(PROOFS)
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise KeyError(f"unknown proof(s): {', '.join(unknown)}; known: {', '.join(names)}")
        names = [n for n in names if n in only]
    for name in names:
        results.append(run_one(name, journals))
    summary = {
        "passed": all(r.passed for r in results),
        "count": len(results),
        "failed": sum(not r.passed for r in results),
        "proofs": [asdict(r) for r in results],
    }
    (out / "summary.json").write_bytes(msgspec.json.format(msgspec.json.encode(summary), indent=2) + b"\n")
    return results
