"""No secret anywhere: every artifact of a live session against the sandbox (journal bytes, ``pmm replay show``,
status.json, the preflight journal, the state folder, stdout/stderr, the HTML report) is searched for the private
key (hex, with and without 0x, any case), the API secret and the passphrase. The API key itself must not be there
either: the venue puts it in user-channel frames and REST rows (``owner``), and the edges replace it with its
stand-in (``key:`` + key_id) before anything is journaled."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import trio

from actors.core.live import key_id
from actors.sink.status import read_status
from pmm.secrets import secret_forms
from replay.show import show_lines
from sandbox.server import open_sandbox
from sandbox.testkeys import TEST_ADDRESS, TEST_PRIVATE_KEY
from tests.live.livekit import live_cfg, run_live
from tests.live.test_live_session import sweep_our_bids, wait_resting


def needles(creds) -> list[bytes]:
    forms = secret_forms(TEST_PRIVATE_KEY, creds)
    out = {f.encode() for f in forms}
    # also the bare key as it would appear in repr/escaped JSON, and the secret in its base64 variants
    out.add(creds.secret.rstrip("=").encode())
    out.add(creds.secret.replace("-", "+").replace("_", "/").encode())
    return sorted(out)


async def test_no_secret_in_any_artifact_of_a_live_session(tmp_path: Path, autojump_clock, capfd) -> None:
    from pmm.config import LiveConfig

    key = tmp_path / "wallet.key"
    key.write_text(TEST_PRIVATE_KEY + "\n")
    os.chmod(key, 0o600)
    async with open_sandbox(seed=1, scenario="calm") as sb:
        c = sb.creds_for(TEST_ADDRESS)
        env = {"PMM_API_KEY": c.api_key, "PMM_API_SECRET": c.secret, "PMM_API_PASSPHRASE": c.passphrase}
        cfg = live_cfg(tmp_path, sb, live=LiveConfig(enabled=True, key_file=str(key), state_dir=str(tmp_path / "state")))

        async def fills() -> None:
            await wait_resting(sb, 2)
            sweep_our_bids(sb)
            sb.faults.user_drop()  # a reconnect: the subscribe message (with the secret) is sent again

        async with trio.open_nursery() as n:
            n.start_soon(fills)
            res, lines = await run_live(tmp_path, sb, cfg, duration=30, env=env)
        assert sb.audit.orders(accepted=True)
    from actors.edge.auth import ApiCreds

    creds = ApiCreds(c.api_key, c.secret, c.passphrase)
    artifacts: dict[str, bytes] = {}
    for p in sorted(tmp_path.rglob("*")):  # noqa: ASYNC240 (after the session: nothing else runs)
        if p.is_file() and p != key:
            artifacts[str(p)] = p.read_bytes()
    artifacts["replay show"] = b"\n".join(show_lines(res.run_dir))
    artifacts["console"] = "\n".join(lines).encode()
    artifacts["status"] = repr(read_status(Path(cfg.status_file))).encode()
    if importlib.util.find_spec("pmm.report") is not None:
        from pmm.report import report_main

        html = tmp_path / "out" / "report.html"
        html.parent.mkdir()
        assert report_main([str(res.run_dir), "--out", str(html)]) == 0
        artifacts["report"] = html.read_bytes()
    out, err = capfd.readouterr()
    artifacts["stdout"], artifacts["stderr"] = out.encode(), err.encode()
    assert any(b"UserFrame" in v or b"luf" in v for v in artifacts.values())
    assert len(artifacts) >= 6
    found = [(name, n.decode()[:6] + "...") for name, data in artifacts.items() for n in needles(creds) if n in data]
    assert found == [], f"secrets found in artifacts: {found}"
    # the API key itself is in none of them either (identity is a hash; the venue's ``owner`` fields are masked) ...
    key_forms = {c.api_key, c.api_key.upper(), c.api_key.replace("-", "")}
    found = [name for name, data in artifacts.items() for k in key_forms if k.encode() in data]
    assert found == [], f"the API key found in artifacts: {found}"
    # ... while the venue did send it (so the check above means something) and its stand-in is what was journaled
    assert any(r.get("api_key") == c.api_key for r in sb.audit.of("cancel"))
    stand_in = ("key:" + key_id(c.api_key)).encode()
    assert any(stand_in in data for name, data in artifacts.items() if name.endswith(".pmj"))
