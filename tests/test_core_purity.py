"""A core actor cannot reach a clock, a socket or an RNG: enforced by a lint rule and by this test.

Two independent checks: ruff's banned-API rule (TID251, configured in pyproject.toml for events/ and
actors/core/), and an AST scan here that needs no linter. Both are shown to fire on a planted violation, so
neither can pass vacuously.
"""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE_DIRS = [ROOT / "events", ROOT / "actors" / "core"]
BANNED_MODULES = {
    "time", "datetime", "random", "secrets", "uuid", "os", "socket", "trio", "asyncio", "threading", "httpx",
    "select", "subprocess", "signal", "trio_websocket",
}
BANNED_CALLS = {"open", "input", "print", "breakpoint", "exec", "eval", "hash", "id"}


def core_files() -> list[Path]:
    return sorted(p for d in CORE_DIRS for p in d.rglob("*.py"))


def violations(source: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            found += [f"{name}:{node.lineno}: import {a.name}" for a in node.names if a.name.split(".")[0] in BANNED_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in BANNED_MODULES:
            found.append(f"{name}:{node.lineno}: from {node.module} import ...")
        elif isinstance(node, (ast.AsyncFunctionDef, ast.Await, ast.AsyncFor, ast.AsyncWith)):
            found.append(f"{name}:{node.lineno}: async code in a core module")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in BANNED_CALLS:
            found.append(f"{name}:{node.lineno}: call to {node.func.id}()")
    return found


def test_core_modules_use_no_clock_socket_rng_or_async() -> None:
    files = core_files()
    assert len(files) > 5
    bad = [v for f in files for v in violations(f.read_text(), str(f.relative_to(ROOT)))]
    assert bad == []


@pytest.mark.parametrize(
    "planted",
    ["import time\nx = time.time()\n", "from random import random\n", "import trio\n",
     "async def step(e):\n    return []\n", "import os.path\n", "x = hash('a')\n"],
)
def test_scan_when_violation_planted_then_reported(planted: str) -> None:
    assert violations(planted, "planted.py")


@pytest.mark.skipif(shutil.which("ruff") is None and not (Path(sys.executable).parent / "ruff").exists(),
                    reason="ruff not installed")
def test_ruff_banned_api_rule_passes_on_core_and_fires_on_planted_violation(tmp_path: Path) -> None:
    ruff = str(Path(sys.executable).parent / "ruff") if (Path(sys.executable).parent / "ruff").exists() else "ruff"
    clean = subprocess.run([ruff, "check", "--select", "TID251", "events", "actors/core"], cwd=ROOT,
                           capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    planted = ROOT / "actors" / "core" / "_planted_violation.py"
    planted.write_text("import time\n\nNOW = time.time()\n")
    try:
        dirty = subprocess.run([ruff, "check", "--select", "TID251", str(planted)], cwd=ROOT,
                               capture_output=True, text=True)
    finally:
        planted.unlink()
    assert dirty.returncode != 0 and "TID251" in dirty.stdout
    # ... and the rule is scoped: the same import outside the core is allowed.
    edge = ROOT / "actors" / "edge" / "_planted_ok.py"
    edge.write_text("import time\n\nNOW = time.time()\n")
    try:
        ok = subprocess.run([ruff, "check", "--select", "TID251", str(edge)], cwd=ROOT, capture_output=True, text=True)
    finally:
        edge.unlink()
    assert ok.returncode == 0, ok.stdout
