"""Starting the built-in sandbox exchange as a child process for a session that names no exchange.

The sandbox is a separate program (the trading code never imports it): it is started with ``python -m sandbox``
on a free loopback port, its base URL is read from the first line it prints, and it is stopped when the
session ends.
"""
from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

URL = re.compile(rb"(http://127\.0\.0\.1:\d+)")


class SandboxStartError(RuntimeError):
    pass


@asynccontextmanager
async def sandbox_process(*, seed: int = 1, scenario: str = "calm", timeout_s: float = 20) -> AsyncIterator[str]:
    """Run ``python -m sandbox`` and yield its base URL; terminate it on exit."""
    cmd = [sys.executable, "-m", "sandbox", "--port", "0", "--seed", str(seed), "--scenario", scenario]
    proc = await trio.lowlevel.open_process(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        seen = b""
        with trio.move_on_after(timeout_s):
            while (m := URL.search(seen)) is None:
                chunk = await proc.stdout.receive_some(4096)
                if not chunk:
                    break
                seen += chunk
        if m is None:
            last = seen.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise SandboxStartError(f"the built-in sandbox exchange did not start: {last[0]}")
        async with trio.open_nursery() as n:
            n.start_soon(_drain, proc.stdout)
            try:
                yield m.group(1).decode()
            finally:
                n.cancel_scope.cancel()
    finally:
        if proc.returncode is None:
            proc.terminate()
            with trio.move_on_after(5) as cs:
                cs.shield = True
                await proc.wait()
            if proc.returncode is None:
                proc.kill()


async def _drain(stream: trio.abc.ReceiveStream) -> None:
    while await stream.receive_some(65536):
        pass
