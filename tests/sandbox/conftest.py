"""Fixtures for the sandbox exchange tests (real sockets on 127.0.0.1; no mocks)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sandbox_testkit

from sandbox_testkit import FIXTURES, WireValidator


@pytest.fixture(scope="session")
def validator() -> WireValidator:
    assert FIXTURES.is_dir(), f"fixtures missing: {FIXTURES}"
    return WireValidator(sandbox_ids=True)
