"""Preflight: the pure judgements, the secrets rules, and refusals of a live session against the sandbox."""
from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pytest
import trio

from actors.core.live import key_stand_in
from actors.edge.auth import ApiCreds
from actors.edge.exchange import judge_geoblock as geo_answer
from actors.live_session import WalletLock
from actors.session import SessionError
from events.base import MICRO
from events.control import RunEnded
from events.live import PreflightCheck
from events.params import RiskParams
from pmm.config import AppConfig, LiveConfig
from pmm.preflight import (
    TINY_CAPS,
    explicit_risk_keys,
    judge_allowlist,
    judge_balance,
    judge_caps,
    judge_clock,
    judge_opt_in,
    judge_version,
    smoke_record_path,
)
from pmm.secrets import (
    REDACTED,
    Redactor,
    SecretError,
    load_api_creds,
    load_private_key,
    owner_only_problem,
    secret_forms,
)
from replay.verify import verify
from sandbox.server import open_sandbox
from sandbox.testkeys import TEST_ADDRESS, TEST_PRIVATE_KEY
from tests.live.livekit import ENV, events, live_cfg, run_live

# ---------------------------------------------------------------- pure judgements


def test_geoblock_answer_when_blocked_or_unreadable_then_not_ok() -> None:
    assert geo_answer(200, {"blocked": False, "country": "IE", "region": "L"}).ok
    blocked = geo_answer(200, {"blocked": True, "country": "US", "region": "NY"})
    assert not blocked.ok and blocked.blocked and "US/NY" in blocked.detail
    for status, body in ((503, {"error": "down"}), (200, None), (200, {"blocked": "no"}), (200, []), (0, None)):
        assert not geo_answer(status, body).ok


def test_opt_in_and_allowlist() -> None:
    assert not judge_opt_in(AppConfig()).ok
    assert judge_opt_in(AppConfig(live=LiveConfig(enabled=True))).ok
    assert not judge_allowlist(AppConfig()).ok  # auto markets: refused
    cfg = msgspec.json.decode(b'{"markets": [{"condition_id": "0x1"}]}', type=AppConfig)
    assert judge_allowlist(cfg).ok
    four = msgspec.json.decode(b'{"markets": [' + b",".join([b'{"condition_id": "0x1"}'] * 4) + b"]}", type=AppConfig)
    assert not judge_allowlist(four).ok and "at most 3" in judge_allowlist(four).detail


def test_caps_must_be_explicit_and_tiny_unless_overridden() -> None:
    tiny = RiskParams(max_order_size=10 * MICRO, max_order_notional=5 * MICRO, max_position=20 * MICRO,
                      max_total_notional=20 * MICRO, daily_loss=5 * MICRO, max_loss=10 * MICRO)
    cfg = AppConfig(risk=tiny)
    assert judge_caps(cfg).ok
    assert not judge_caps(AppConfig()).ok  # the defaults (50-share orders) are above the tiny limits
    assert not judge_caps(cfg, explicit=frozenset()).ok
    assert "max_position" in judge_caps(cfg, explicit={"max_order_size", "max_total_notional", "daily_loss"}).detail
    assert judge_caps(cfg, explicit={"max_order_size", "max_position", "max_total_notional", "daily_loss"}).ok
    big = AppConfig(risk=msgspec.structs.replace(tiny, max_position=TINY_CAPS["max_position"] + 1))
    assert not judge_caps(big).ok
    assert judge_caps(msgspec.structs.replace(big, live=LiveConfig(caps_override=True))).ok
    assert explicit_risk_keys(b'{"risk": {"max_order_size": 1}}') == {"max_order_size"}
    assert explicit_risk_keys(b"{}") == frozenset() and explicit_risk_keys(None) is None


def test_clock_version_and_balance() -> None:
    assert judge_clock(200, 1000, 1004.0).ok
    assert not judge_clock(200, 1000, 1005.5).ok and not judge_clock(200, 1000, 994.0).ok
    assert not judge_clock(503, None, 1000.0).ok and not judge_clock(200, True, 1.0).ok
    assert judge_version(200, {"version": 2}).ok and not judge_version(200, {"version": 1}).ok
    ex = ["0xE111180000d2663C0091e4f400237545B87B996B"]
    ok = {"balance": "100000000", "allowances": {ex[0].lower(): str(2**255)}}
    assert judge_balance(ok, 50 * MICRO, ex).ok
    assert not judge_balance({**ok, "balance": "1000"}, 50 * MICRO, ex).ok
    assert not judge_balance({**ok, "allowances": {}}, 50 * MICRO, ex).ok
    assert not judge_balance(None, 1, ex).ok


def test_smoke_record_is_keyed_by_address_and_exchange(tmp_path: Path) -> None:
    a = smoke_record_path(tmp_path, TEST_ADDRESS, "http://x/")
    assert a == smoke_record_path(tmp_path, TEST_ADDRESS.lower(), "http://x")
    assert a != smoke_record_path(tmp_path, TEST_ADDRESS, "http://y")


# ---------------------------------------------------------------- secrets


def test_key_file_must_be_owner_only(tmp_path: Path) -> None:
    f = tmp_path / "key"
    f.write_text(TEST_PRIVATE_KEY[2:] + "\n")
    f.chmod(0o644)
    with pytest.raises(SecretError, match="chmod 600") as exc:
        load_private_key(str(f), env={})
    assert TEST_PRIVATE_KEY[2:] not in str(exc.value)
    f.chmod(0o600)
    key = load_private_key(str(f), env={})
    assert key.hex == TEST_PRIVATE_KEY and TEST_PRIVATE_KEY[2:] not in repr(key)
    assert owner_only_problem(tmp_path) and owner_only_problem(tmp_path / "nope")
    with pytest.raises(SecretError, match="no private key"):
        load_private_key("", env={})
    with pytest.raises(SecretError, match="not a private key"):
        load_private_key("", env={"PMM_PRIVATE_KEY": "0x1234"})
    assert load_private_key(str(f), env={"PMM_PRIVATE_KEY": TEST_PRIVATE_KEY[2:]}).source == "$PMM_PRIVATE_KEY"


def test_api_creds_all_or_nothing_and_redaction() -> None:
    assert load_api_creds({}) is None
    with pytest.raises(SecretError, match="PMM_API_PASSPHRASE"):
        load_api_creds({"PMM_API_KEY": "k", "PMM_API_SECRET": "s"})
    creds = load_api_creds({"PMM_API_KEY": "k", "PMM_API_SECRET": "c2VjcmV0c2VjcmV0", "PMM_API_PASSPHRASE": "p" * 64})
    assert creds == ApiCreds("k", "c2VjcmV0c2VjcmV0", "p" * 64)
    red = Redactor(secret_forms(TEST_PRIVATE_KEY, creds))
    text = f"a {TEST_PRIVATE_KEY.upper()[2:]} b {TEST_PRIVATE_KEY} c {creds.secret} d {creds.passphrase}"
    out = red(text)
    assert out.count(REDACTED) == 4 and "11111111" not in out and creds.secret not in out
    # the API key is not redacted away but replaced by its stand-in, as the live edges journal it
    api_key = "0fd468be-9964-49b9-94ec-5ab63b84d798"
    red = Redactor(secret_forms(TEST_PRIVATE_KEY, creds), api_key=api_key)
    assert red(f"cancel refused: owner {api_key} / {creds.secret}") == \
        f"cancel refused: owner {key_stand_in(api_key)} / {REDACTED}"


def test_wallet_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    a = WalletLock(tmp_path, TEST_ADDRESS)
    a.acquire()
    b = WalletLock(tmp_path, TEST_ADDRESS)
    with pytest.raises(SessionError, match=f"already running for wallet {TEST_ADDRESS}.*live-0x19e7"):
        b.acquire()
    a.release()
    b.acquire()
    b.release()


# ---------------------------------------------------------------- refusals of a live session


async def refused(tmp_path: Path, sb, cfg: AppConfig | None = None, **kw) -> tuple[str, list[PreflightCheck]]:
    with pytest.raises(SessionError, match="preflight failed") as exc:
        await run_live(tmp_path, sb, cfg, duration=5, **kw)
    assert not sb.audit.orders(), "an order reached the exchange although preflight failed"
    [run_dir] = list((tmp_path / "journals").iterdir())
    assert isinstance(events(run_dir, RunEnded)[-1], RunEnded)
    assert verify(run_dir).ok
    return str(exc.value), events(run_dir, PreflightCheck)


@pytest.mark.parametrize("answer", ["blocked", "down"])
async def test_live_when_geoblock_blocked_or_down_then_refuses(tmp_path: Path, answer: str, autojump_clock) -> None:
    async with open_sandbox(seed=1, scenario="calm", geoblock=answer) as sb:
        msg, checks = await refused(tmp_path, sb)
        assert not any(r["kind"] in ("auth", "heartbeat") for r in sb.audit)  # nothing more was said to it
    assert "geoblock" in msg
    geo = next(c for c in checks if c.name == "geoblock")
    assert not geo.ok and ("blocked" in geo.detail if answer == "blocked" else "HTTP 503" in geo.detail)


async def test_live_when_no_allowlist_then_refuses(tmp_path: Path, autojump_clock) -> None:
    async with open_sandbox(seed=1, scenario="calm") as sb:
        msg, checks = await refused(tmp_path, sb, live_cfg(tmp_path, sb, markets=()))
    assert "allowlist" in msg and not next(c for c in checks if c.name == "allowlist").ok


async def test_live_when_caps_missing_or_too_big_then_refuses(tmp_path: Path, autojump_clock) -> None:
    async with open_sandbox(seed=1, scenario="calm") as sb:
        msg, _ = await refused(tmp_path / "a", sb, live_cfg(tmp_path / "a", sb), explicit_caps=frozenset({"daily_loss"}))
        assert "caps" in msg and "max_order_size" in msg
        msg, _ = await refused(tmp_path / "b", sb, live_cfg(tmp_path / "b", sb, risk=RiskParams()))
        assert "caps" in msg and "tiny" in msg


async def test_live_when_not_opted_in_then_refuses(tmp_path: Path, autojump_clock) -> None:
    async with open_sandbox(seed=1, scenario="calm") as sb:
        msg, _ = await refused(tmp_path, sb, live_cfg(tmp_path, sb, live=LiveConfig(state_dir=str(tmp_path / "s"))))
    assert "opt_in" in msg


async def test_live_when_key_file_readable_by_others_then_refuses(tmp_path: Path, autojump_clock) -> None:
    key = tmp_path / "key.hex"
    key.write_text(TEST_PRIVATE_KEY)
    os.chmod(key, 0o640)
    async with open_sandbox(seed=1, scenario="calm") as sb:
        cfg = live_cfg(tmp_path, sb, live=LiveConfig(enabled=True, key_file=str(key), state_dir=str(tmp_path / "s")))
        msg, _ = await refused(tmp_path, sb, cfg, env={})
    assert "private_key" in msg and "chmod 600" in msg
    assert TEST_PRIVATE_KEY[2:] not in msg


async def test_live_when_another_instance_holds_the_wallet_then_refuses(tmp_path: Path, autojump_clock) -> None:
    async with open_sandbox(seed=1, scenario="calm") as sb:
        cfg = live_cfg(tmp_path, sb)
        lock = WalletLock(Path(cfg.live.state_dir), TEST_ADDRESS)
        lock.acquire()
        try:
            with pytest.raises(SessionError, match="already running for wallet"):
                await run_live(tmp_path, sb, cfg, duration=5)
        finally:
            lock.release()
        assert not sb.audit.orders()


async def test_preflight_smoke_runs_once_per_machine(tmp_path: Path, autojump_clock) -> None:
    async with open_sandbox(seed=1, scenario="calm") as sb:
        cfg = live_cfg(tmp_path, sb)
        await run_live(tmp_path, sb, cfg, duration=2)
        smoke = [r for r in sb.audit.orders() if r["price"] == "0.01"]
        assert len(smoke) == 1 and smoke[0]["post_only"] and smoke[0]["signer"] == TEST_ADDRESS
        await trio.sleep(1)
        await run_live(tmp_path, sb, cfg, duration=2)
        assert len([r for r in sb.audit.orders() if r["price"] == "0.01"]) == 1  # recorded: not run again
    runs = sorted((tmp_path / "journals").iterdir())
    checks = [next(c for c in events(r, PreflightCheck) if c.name == "smoke") for r in runs]
    assert checks[0].ok and "placed, seen, cancelled, seen" in checks[0].detail
    assert checks[1].ok and "passed before" in checks[1].detail


def test_env_fixture_is_the_sandbox_test_key() -> None:
    assert ENV == {"PMM_PRIVATE_KEY": TEST_PRIVATE_KEY}
