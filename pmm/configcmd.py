"""`pmm config init|check`: write a valid config.json by answering a few plain questions; validate one.

``config_main(argv)`` is the entry point (argv is what follows ``pmm config``). Every problem is one line on
stderr (``pmm: ...``); exit 2 for unusable input, 0 otherwise. The checks that go beyond the file's shape
(``semantic_problems``) are shared with `pmm start`, which refuses a config with errors before it starts anything.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import msgspec

from pmm.config import AppConfig, ConfigError, StorageConfig, load_config, parse_config

EXIT_USAGE = 2
MICRO = 1_000_000

POLYMARKET = {
    "rest_url": "https://clob.polymarket.com",
    "market_ws_url": "wss://ws-subscriptions-clob.polymarket.com/ws/market",
    "user_ws_url": "wss://ws-subscriptions-clob.polymarket.com/ws/user",
    "geoblock_url": "https://polymarket.com/api/geoblock",
}
"""Polymarket's production endpoints, written by `pmm config init` when markets are named by condition id."""

CONDITION_ID = re.compile(r"0x[0-9a-fA-F]{64}")
TOKEN_ID = re.compile(r"[0-9]{1,80}")


def _err(msg: str) -> None:
    print(f"pmm: {msg}", file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        _err(f"{self.prog.removeprefix('pmm').strip() or 'usage'}: {message} (see --help)")
        raise SystemExit(EXIT_USAGE)


# ================================================================ checks beyond the file's shape
def semantic_problems(cfg: AppConfig) -> tuple[list[str], list[str]]:
    """(errors, warnings) about a config that decoded: things msgspec's types cannot say.

    Errors make the config unusable (`pmm config check` exits 2, `pmm start` refuses); warnings are printed.
    Each is one line starting with the field path.
    """
    errors: list[str] = []
    warnings: list[str] = []
    ex = cfg.exchange
    sandbox = not ex.rest_url
    seen: set[str] = set()
    for i, m in enumerate(cfg.markets):
        at = f"markets[{i}]"
        if not m.condition_id:
            errors.append(f"{at}.condition_id: required (Polymarket's condition id: 0x followed by 64 hex digits)")
        elif not CONDITION_ID.fullmatch(m.condition_id):
            errors.append(f"{at}.condition_id: must be 0x followed by 64 hex digits (got {_short(m.condition_id)})")
        elif m.condition_id.lower() in seen:
            errors.append(f"{at}.condition_id: the same market is listed twice ({_short(m.condition_id)})")
        seen.add(m.condition_id.lower())
        if bool(m.yes_token) != bool(m.no_token):
            errors.append(f"{at}: give both yes_token and no_token, or neither (they are then looked up)")
        for f in ("yes_token", "no_token"):
            v = getattr(m, f)
            if v and not TOKEN_ID.fullmatch(v):
                errors.append(f"{at}.{f}: must be a token id in decimal digits (got {_short(v)})")
    for f in ("rest_url", "geoblock_url"):
        v = getattr(ex, f)
        if v and not re.match(r"https?://[^\s/]+", v):
            errors.append(f"exchange.{f}: must start with http:// or https:// (got {_short(v)})")
    for f in ("market_ws_url", "user_ws_url"):
        v = getattr(ex, f)
        if v and not re.match(r"wss?://[^\s/]+", v):
            errors.append(f"exchange.{f}: must start with ws:// or wss:// (got {_short(v)})")
    if sandbox:
        scenarios = _sandbox_scenarios()
        if scenarios and ex.sandbox_scenario not in scenarios:
            errors.append(f"exchange.sandbox_scenario: must be one of {', '.join(sorted(scenarios))} "
                          f"(got {_short(ex.sandbox_scenario)})")
        if cfg.markets:
            warnings.append("markets: named by condition id, but no exchange.rest_url is set, so the built-in sandbox "
                            "is used and its markets are made up: leave markets empty (auto) or set the exchange")
    if cfg.mode == "live":
        if sandbox:
            errors.append("exchange.rest_url: live trading needs a real exchange (e.g. "
                          f"\"{POLYMARKET['rest_url']}\"); empty means the built-in sandbox")
        elif not cfg.markets and not re.match(r"https?://(127\.0\.0\.1|localhost|\[::1\])[:/]", ex.rest_url + "/"):
            errors.append("markets: live trading needs the markets named by condition id (auto is for a sandbox)")
    if cfg.feed.backoff_initial_s > cfg.feed.backoff_max_s:
        errors.append("feed.backoff_initial_s: must not be more than feed.backoff_max_s")
    sv = cfg.supervisor
    if sv.backoff_initial_s > sv.backoff_max_s:
        errors.append("supervisor.backoff_initial_s: must not be more than supervisor.backoff_max_s")
    for f in ("journal_dir", "status_file"):
        if not getattr(cfg, f).strip():
            errors.append(f"{f}: must not be empty")
    if cfg.storage.min_free_gb == 0:
        warnings.append("storage.min_free_gb: 0 turns the free-space check off: a full disk then halts the session "
                        "abruptly (kill switch journal_failed) instead of stopping it cleanly")

    r, q = cfg.risk, cfg.quoter
    for path, v, unit in (("risk.max_order_size", r.max_order_size, "shares"),
                          ("risk.max_position", r.max_position, "shares"),
                          ("quoter.size", q.size, "shares"),
                          ("quoter.max_position", q.max_position, "shares"),
                          ("risk.max_order_notional", r.max_order_notional, "dollars"),
                          ("risk.max_total_notional", r.max_total_notional, "dollars"),
                          ("risk.max_loss", r.max_loss, "dollars"),
                          ("risk.daily_loss", r.daily_loss, "dollars")):
        if 0 < v < 1000:
            warnings.append(f"{path}: {v} is only {v / MICRO:g} {unit}: the unit is micro-{unit} "
                            f"(did you mean {v * MICRO} = {v} {unit}?)")
    if r.max_order_size < 5 * MICRO:
        warnings.append(f"risk.max_order_size: {_sh(r.max_order_size)} is below Polymarket's usual minimum order "
                        "of 5 shares: most orders will be refused")
    if r.max_order_size > r.max_position:
        warnings.append(f"risk.max_order_size ({_sh(r.max_order_size)}) is more than risk.max_position "
                        f"({_sh(r.max_position)})")
    if r.max_loss == 0 or r.daily_loss == 0:
        warnings.append("risk.max_loss / risk.daily_loss: 0 trips the kill switch at the first cent of loss")
    if r.daily_loss > r.max_loss:
        warnings.append(f"risk.daily_loss (${r.daily_loss / MICRO:g}) is more than risk.max_loss "
                        f"(${r.max_loss / MICRO:g}, per run): the per-run limit trips first")
    return errors, warnings


def _sandbox_scenarios() -> set[str]:
    try:
        from sandbox.scenarios import SCENARIOS
    except Exception:  # the sandbox is optional for checking a config
        return set()
    return set(SCENARIOS)


def _short(v: str) -> str:
    t = msgspec.json.encode(v).decode()
    return t if len(t) <= 70 else t[:67] + '..."'


def _sh(v: int) -> str:
    return f"{v / MICRO:g} shares"


def _usd(v: int) -> str:
    return f"${v / MICRO:,.2f}".replace(".00", "")


def summary(cfg: AppConfig) -> list[str]:
    """A few plain lines: what this config will do."""
    ex = cfg.exchange
    where = (f"the built-in sandbox exchange (scenario {ex.sandbox_scenario}, seed {ex.sandbox_seed})"
             if not ex.rest_url else ex.rest_url)
    mode = {"paper": f"paper ({'simulated fills' if cfg.fills == 'sim' else 'no fills: orders only recorded'}), "
                     "no real orders", "live": "LIVE: real orders with real money",
            "shadow": "shadow: quotes computed, nothing sent"}[cfg.mode]
    if cfg.markets:
        mk = ", ".join(m.condition_id[:10] + "…" for m in cfg.markets)
        markets = f"{len(cfg.markets)} named: {mk}"
    else:
        markets = f"auto (the first {cfg.auto_markets} the exchange lists)"
    r, q, s, d = cfg.risk, cfg.quoter, cfg.supervisor, cfg.storage
    return [
        f"mode      {mode}",
        f"exchange  {where}",
        f"markets   {markets}",
        f"caps      order <= {_sh(r.max_order_size)} (<= {_usd(r.max_order_notional)}), position <= "
        f"{_sh(r.max_position)} per token, all positions and buy orders <= {_usd(r.max_total_notional)}",
        f"losses    kill switch at {_usd(r.max_loss)} lost in a run or {_usd(r.daily_loss)} in a day "
        f"(reduce-only from {_usd(r.reduce_loss)})",
        f"quotes    {_sh(q.size)} each, spread {q.spread / MICRO:g}, {q.levels} level(s)",
        f"restarts  after a crash: wait {s.backoff_initial_s:g} s, doubling up to {s.backoff_max_s:g} s; give up "
        f"after {s.max_crashes} crashes in {s.crash_window_s / 60:g} min",
        f"disk      journals in {cfg.journal_dir}/: keep the last {d.keep_runs} runs, at most {d.max_journal_gb:g} GB; "
        + (f"stop cleanly below {d.min_free_gb:g} GB free" if d.min_free_gb else "no free-space check"),
    ]


# ================================================================ check
def cmd_check(args: argparse.Namespace) -> int:
    path = Path(args.path)
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        for p in exc.problems:
            _err(p)
        return EXIT_USAGE
    errors, warnings = semantic_problems(cfg)
    for e in errors:
        _err(f"{path}: {e}")
    if errors:
        return EXIT_USAGE
    print(f"OK: {path}")
    for line in summary(cfg):
        print(f"  {line}")
    for w in warnings:
        print(f"warning: {w}")
    return 0


# ================================================================ init
class _Ask:
    """Questions on stdout, answers from stdin; Enter (or the end of stdin) takes the default."""

    def __init__(self, use_defaults: bool) -> None:
        self.use_defaults = use_defaults
        self.eof = False

    def __call__(self, question: str, default: str, parse: Callable[[str], object]) -> object:
        for _attempt in range(5):
            if self.use_defaults or self.eof:
                answer = ""
            else:
                try:
                    answer = input(f"{question} [{default}]: ").strip()
                    if not sys.stdin.isatty():
                        print(answer)  # piped answers are not echoed by the terminal
                except EOFError:
                    self.eof = True
                    print()
                    answer = ""
            try:
                return parse(answer or default)
            except ValueError as exc:
                if self.use_defaults or self.eof or not sys.stdin.isatty():  # piped answers: no second try
                    raise ValueError(f"{question.strip().rstrip('?:')}: {exc}") from None
                print(f"  -> {exc}; try again (or press Enter for {default})")
        raise ValueError(f"{question}: no usable answer")


def _mode(a: str) -> str:
    a = a.lower()
    if a not in ("paper", "live"):
        raise ValueError(f"answer paper or live (got {a!r})")
    return a


def _markets(a: str) -> list[str]:
    if a.lower() == "auto":
        return []
    ids = [x for x in re.split(r"[\s,;]+", a) if x]
    bad = [x for x in ids if not CONDITION_ID.fullmatch(x)]
    if bad or not ids:
        raise ValueError(f"{bad[0] if bad else a!r} is not a condition id (0x followed by 64 hex digits) nor auto")
    if len({x.lower() for x in ids}) != len(ids):
        raise ValueError("a market is listed twice")
    return ids


def _amount(unit: str, lo: Decimal, hi: Decimal) -> Callable[[str], int]:
    def parse(a: str) -> int:
        text = a.replace("$", "").replace(",", "").strip()
        try:
            v = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{a!r} is not a number of {unit}") from None
        if not v.is_finite() or v < lo or v > hi:
            raise ValueError(f"must be between {lo:f} and {hi:f} {unit} (got {a})")
        micro = v * MICRO
        if micro != micro.to_integral_value():
            raise ValueError(f"at most 6 decimals (got {a})")
        return int(micro)

    return parse


def _gigabytes(a: str) -> float:
    text = a.upper().removesuffix("GB").strip()
    try:
        v = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{a!r} is not a number of GB") from None
    if not v.is_finite() or v < 1 or v > 100_000:
        raise ValueError(f"must be between 1 and 100000 GB (got {a})")
    return float(v)


def _plain(v: float) -> float | int:
    """20 rather than 20.0 in the file (both load)."""
    return int(v) if float(v).is_integer() else v


def build_config(*, mode: str, markets: list[str], order_size: int, position: int, daily_loss: int,
                 journal_gb: float = 20.0) -> dict:
    """The config `init` writes: only what differs from the defaults, plus the answers (sizes in micro-units).

    Limits that follow from the answers keep the default ratios: per-order notional = order size x $0.50,
    total notional = position x $1, quote size = min(10 shares, order size), the quoter's soft position cap =
    half the hard one, the per-run loss limit = the daily one, reduce-only at half of it. The ``storage`` section
    is written whole (its other fields at their defaults) so that whoever helps the operator sees it in the file.
    """
    cfg: dict = {"mode": mode, "fills": "sim"}
    if markets:
        cfg["exchange"] = dict(POLYMARKET)
        cfg["markets"] = [{"condition_id": c} for c in markets]
    else:
        cfg["exchange"] = {"sandbox_scenario": "calm"}
        cfg["auto_markets"] = 2
    cfg["risk"] = {
        "max_order_size": order_size,
        "max_order_notional": order_size // 2,
        "max_position": position,
        "max_total_notional": position,
        "max_loss": daily_loss,
        "daily_loss": daily_loss,
        "reduce_loss": daily_loss // 2,
    }
    cfg["quoter"] = {"size": min(10 * MICRO, order_size), "max_position": position // 2}
    d = StorageConfig()
    cfg["storage"] = {"keep_runs": d.keep_runs, "max_journal_gb": _plain(journal_gb), "min_free_gb": _plain(d.min_free_gb)}
    return cfg


def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if path.is_dir():
        _err(f"config init: {path} is a folder; give the file name, e.g. --path {path / 'config.json'}")
        return EXIT_USAGE
    if not path.parent.is_dir():
        _err(f"config init: folder {path.parent} does not exist")
        return EXIT_USAGE
    if path.exists() and not args.force:
        _err(f"config init: {path} already exists; not replacing it (use --force to replace it: "
             "the old file is kept as a .bak copy)")
        return EXIT_USAGE
    ask = _Ask(args.defaults)
    if not args.defaults:
        print("pmm config init: a few questions; press Enter to take the [default].")
    try:
        mode = ask("Mode: paper (practice, no real orders) or live (real orders, real money)?", "paper", _mode)
        while True:
            markets = ask("Markets: auto (practice on the built-in sandbox exchange) or Polymarket condition ids "
                          "(0x..., separated by commas)?", "auto", _markets)
            if mode == "live" and not markets:
                if ask.use_defaults or ask.eof or not sys.stdin.isatty():
                    raise ValueError("live mode needs markets named by condition id (auto is the practice sandbox)")
                print("  -> live mode needs markets named by condition id (auto is the practice sandbox)")
                continue
            break
        order = ask("Largest single order, in shares?", "50", _amount("shares", Decimal(0), Decimal(10**6)))
        pos = ask("Largest position per outcome token, in shares?", "200",
                  _amount("shares", Decimal(0), Decimal(10**7)))
        loss = ask("Loss that stops trading for the day, in dollars?", "20",
                   _amount("dollars", Decimal(0), Decimal(10**7)))
        journal_gb = ask("Disk space the records of past runs (journals) may use, in GB? (the oldest are deleted "
                         "beyond it)", f"{StorageConfig().max_journal_gb:g}", _gigabytes)
    except ValueError as exc:
        _err(f"config init: {exc}")
        return EXIT_USAGE
    data = build_config(mode=mode, markets=markets, order_size=order, position=pos, daily_loss=loss,  # type: ignore[arg-type]
                        journal_gb=journal_gb)  # type: ignore[arg-type]
    raw = msgspec.json.format(msgspec.json.encode(data), indent=2) + b"\n"
    cfg = parse_config(raw, str(path))  # what we write must load; a failure here is a bug, not user input
    try:
        backup = _write_new(path, raw, replace=args.force)
    except FileExistsError:
        _err(f"config init: {path} appeared while writing; not replacing it")
        return EXIT_USAGE
    except OSError as exc:
        _err(f"config init: cannot write {path}: {exc.strerror}")
        return EXIT_USAGE
    print(f"wrote {path}" + (f" (the old one is kept as {backup})" if backup else ""))
    for line in summary(cfg):
        print(f"  {line}")
    _errors, warnings = semantic_problems(cfg)
    for w in warnings:
        print(f"warning: {w}")
    print(f"next: `pmm config check --path {path}`, then `pmm start {mode}`. Every field is described in "
          "docs/config.md.")
    return 0


def _write_new(path: Path, data: bytes, *, replace: bool) -> Path | None:
    """Write ``path`` atomically. Without ``replace`` an existing file is never touched (link, not rename);
    with it, the old file is first copied to ``<name>.bak-<UTC time>``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    backup = None
    try:
        if replace and path.exists():
            backup = path.with_name(f"{path.name}.bak-{datetime.now(UTC):%Y%m%d-%H%M%S}")
            n = 1
            while backup.exists():
                n += 1
                backup = backup.with_name(f"{path.name}.bak-{datetime.now(UTC):%Y%m%d-%H%M%S}-{n}")
            backup.write_bytes(path.read_bytes())
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if it exists: never replaces
    finally:
        tmp.unlink(missing_ok=True)
    return backup


# ================================================================ entry point
def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pmm config", description="Write or check config.json (every field: docs/config.md).")
    sub = p.add_subparsers(dest="config_cmd", required=True, parser_class=_Parser, metavar="init|check")
    i = sub.add_parser("init", help="answer a few questions and write a valid config.json")
    i.add_argument("--path", default="config.json", metavar="FILE", help="where to write it (default config.json)")
    i.add_argument("--force", action="store_true", help="replace an existing file (a .bak copy is kept)")
    i.add_argument("--defaults", action="store_true", help="ask nothing: paper, sandbox, the default caps")
    i.set_defaults(fn=cmd_init)
    c = sub.add_parser("check", help="validate a config without running anything")
    c.add_argument("--path", default="config.json", metavar="FILE", help="the file (default config.json)")
    c.set_defaults(fn=cmd_check)
    return p


def config_main(argv: list[str]) -> int:
    """`pmm config init|check ...` (argv: what follows `pmm config`)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(config_main(sys.argv[1:]))
