"""The command line, run as a real subprocess; and the sandbox's independence from the trading system."""

from __future__ import annotations

import ast
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import trio
from sandbox_testkit import REPO_ROOT
from trio_websocket import open_websocket_url

from sandbox.cli import main

TRADING_PACKAGES = {"events", "journal", "actors", "replay", "pmm"}
LAUNCH = "import sys; from sandbox.cli import main; sys.exit(main(sys.argv[1:]))"


async def start_cli(*args: str) -> tuple[trio.Process, dict, list[str]]:
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-c", LAUNCH, *args], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    buf, lines = b"", []
    with trio.fail_after(20):
        while True:
            chunk = await proc.stdout.receive_some()
            assert chunk, f"sandbox exited early: {buf!r}"
            buf += chunk
            *done, buf = buf.split(b"\n")
            lines += [ln.decode() for ln in done]
            ready = [ln for ln in lines if ln.startswith("READY ")]
            if ready:
                return proc, json.loads(ready[0][6:]), lines


async def stop_cli(proc: trio.Process) -> tuple[int, bytes]:
    proc.send_signal(signal.SIGINT)
    out = b""
    with trio.fail_after(20):
        while chunk := await proc.stdout.receive_some():
            out += chunk
        rc = await proc.wait()
    return rc, out


async def test_cli_subprocess_prints_urls_serves_and_exits_cleanly_on_sigint() -> None:
    proc, info, lines = await start_cli(
        "--port", "0", "--seed", "3", "--scenario", "busy", "--geoblock", "blocked"
    )
    try:
        base = info["base_url"]
        assert base.startswith("http://127.0.0.1:") and int(base.rsplit(":", 1)[1]) > 0
        assert info["market_ws_url"] == base.replace("http://", "ws://") + "/ws/market"
        assert info["geoblock_url"] == base + "/api/geoblock"
        assert any(base in ln for ln in lines[:-1])  # human-readable URL lines before READY
        assert info["seed"] == 3 and info["scenario"] == "busy" and len(info["token_ids"]) == 16
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/ok")).json() == "OK"
            assert (await http.get(info["geoblock_url"])).json()["blocked"] is True
        async with open_websocket_url(info["market_ws_url"]) as ws:
            await ws.send_message(json.dumps({"assets_ids": info["token_ids"][:2], "type": "market"}))
            with trio.fail_after(10):
                dump = json.loads(await ws.get_message())
                assert [e["asset_id"] for e in dump] == info["token_ids"][:2]
                await ws.get_message()  # the timer is running (busy: 50 steps/s)
    finally:
        rc, out = await stop_cli(proc)
    assert rc == 0
    assert b"stopped" in out


async def test_cli_playback_file(tmp_path: Path) -> None:
    rec = tmp_path / "rec.jsonl"
    frame = (
        '[{"market":"0x' + "ab" * 32 + '","asset_id":"123456789012345","timestamp":"1","hash":"h","bids":[],'
        '"asks":[],"tick_size":"0.01","event_type":"book","last_trade_price":""}]'
    )
    rec.write_text(json.dumps({"ts_ns": 5, "frame": frame}) + "\n", encoding="utf-8")
    proc, info, _ = await start_cli("--playback", str(rec), "--speed", "4")
    try:
        assert info["token_ids"] == ["123456789012345"]
        async with open_websocket_url(info["market_ws_url"]) as ws:
            await ws.send_message(json.dumps({"assets_ids": ["123456789012345"], "type": "market"}))
            with trio.fail_after(10):
                assert await ws.get_message() == frame
    finally:
        rc, _ = await stop_cli(proc)
    assert rc == 0


def test_cli_rejects_bad_arguments(capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["--port", str(taken.getsockname()[1])]) == 1
    assert "in use" in capsys.readouterr().err
    assert main(["--scenario", "nope"]) == 2
    assert main(["--playback", "/nonexistent/file.jsonl"]) == 1
    assert main(["--help"]) == 0
    assert "--scenario" in capsys.readouterr().out


def test_sandbox_imports_nothing_from_the_trading_system() -> None:
    for path in sorted((REPO_ROOT / "sandbox").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for n in names:
                assert n.split(".")[0] not in TRADING_PACKAGES, f"{path.name} imports {n}"
    code = (
        "import sys, sandbox.cli, sandbox.server, sandbox.playback; "
        f"bad = [m for m in sys.modules if m.split('.')[0] in {sorted(TRADING_PACKAGES)!r}]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stdout + r.stderr
