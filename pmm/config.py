"""The application config (``config.json``): validated at load, one clear line per problem.

The core's part (markets, quoter, orders, risk, sim) is ``events.params``; it is journaled in ``RunStarted``.
The rest (endpoints, paths, timings of the edges) never changes what the core decides and is not journaled,
except as part of the config hash. Credentials are never part of this file.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from events.params import OrderParams, QuoterParams, RiskParams, SimParams

Seconds = Annotated[float, Meta(gt=0, le=7 * 24 * 3600)]


class _Cfg(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class ExchangeConfig(_Cfg):
    """Where the exchange is. Empty ``rest_url``: start the built-in sandbox exchange on loopback."""

    rest_url: str = ""
    market_ws_url: str = ""
    user_ws_url: str = ""
    geoblock_url: str = ""
    sandbox_seed: int = 1
    sandbox_scenario: str = "calm"


class MarketSelector(_Cfg):
    """A market by condition id (tokens looked up from the exchange) or by its YES/NO token ids."""

    condition_id: str = ""
    yes_token: str = ""
    no_token: str = ""


class FeedConfig(_Cfg):
    ping_interval_s: Seconds = 10.0
    silence_timeout_s: Seconds = 30.0
    connect_timeout_s: Seconds = 10.0
    backoff_initial_s: Seconds = 0.5
    backoff_max_s: Seconds = 30.0


class SupervisorConfig(_Cfg):
    """How `pmm start` looks after the session (a child process). Never changes what the core decides."""

    max_crashes: Annotated[int, Meta(ge=1, le=1000)] = 5
    """Give up (state "crashed") after this many crashes within ``crash_window_s``."""
    crash_window_s: Seconds = 600.0
    backoff_initial_s: Seconds = 1.0
    """Wait before the first restart; doubled after each crash (1 s, 2 s, 4 s ...) up to ``backoff_max_s``."""
    backoff_max_s: Seconds = 60.0
    backoff_reset_s: Seconds = 300.0
    """A session that ran this long before crashing restarts after ``backoff_initial_s`` again."""
    stop_timeout_s: Seconds = 30.0
    """`pmm stop` waits this long for a clean stop before killing the session."""
    stderr_tail_lines: Annotated[int, Meta(ge=1, le=200)] = 20
    """How many of the session's last stderr lines a "crashed" status.json keeps (secrets redacted)."""


class StorageConfig(_Cfg):
    """Disk space (`pmm start`, `pmm prune`; pmm/retention.py): how many old run journals are kept and how much
    free space a session needs. Never changes what the core decides. Sizes in GB (10^9 bytes)."""

    keep_runs: Annotated[int, Meta(ge=1, le=100_000)] = 30
    """Keep at most this many run folders under ``journal_dir``; older finished ones are deleted at each start."""
    max_journal_gb: Annotated[float, Meta(gt=0, le=1_000_000)] = 20.0
    """... and delete the oldest finished ones while all of them together are bigger than this."""
    min_free_gb: Annotated[float, Meta(ge=0, le=1_000_000)] = 2.0
    """Refuse to start, and stop a running session cleanly, when the journal's disk has less free space than this.
    0: no check (a full disk then halts the session with ``journal_failed``)."""
    check_interval_s: Annotated[float, Meta(ge=1, le=600)] = 15.0
    """How often the supervisor looks at the free space while a session runs."""


class LiveConfig(_Cfg):
    """Live trading. Safe defaults: disabled; caps must be tiny unless ``caps_override``. No secret lives here:
    the private key comes from the environment (``PMM_PRIVATE_KEY``) or ``key_file`` (owner-only permissions), the
    API credentials from the environment or are derived with the key (docs/live.md)."""

    enabled: bool = False
    """The explicit opt-in: `pmm live` and `pmm preflight` refuse unless it is true."""
    key_file: str = ""
    """File holding the private key (hex). Must be readable by its owner only (chmod 600)."""
    signature_type: Literal[0, 1, 2, 3] = 0
    """0 EOA, 1 POLY_PROXY, 2 POLY_GNOSIS_SAFE, 3 POLY_1271 (deposit wallet)."""
    funder: str = ""
    """Maker address for signature types 1-3 (empty for EOA)."""
    chain_id: Literal[137, 80002] = 137
    api_nonce: Annotated[int, Meta(ge=0, le=2**63 - 1)] = 0
    """Nonce of the API credentials derived with L1 when none are given in the environment."""
    caps_override: bool = False
    """Allow risk caps above preflight's tiny limits (``pmm.preflight.TINY_CAPS``)."""
    heartbeat_interval_s: Annotated[float, Meta(ge=1, le=8)] = 5.0
    """The venue cancels every order 10 s after the last heartbeat; we send one this often."""
    geoblock_recheck_s: Annotated[float, Meta(ge=10, le=3600)] = 300.0
    order_timeout_s: Annotated[float, Meta(ge=0.5, le=60)] = 5.0
    """No answer to an order request within this: its outcome is unknown (resolved by a lookup)."""
    state_dir: str = "live-state"
    """Lock files (one running instance per wallet) and the record of passed integration smoke tests."""
    startup_timeout_s: Annotated[float, Meta(ge=1, le=300)] = 30.0
    """How long the start may wait for the user channel and the first heartbeat before refusing."""
    position_tolerance: Annotated[int, Meta(ge=0, le=10**15)] = 0
    """Micro-shares: how far a token's balance at start may differ from what the previous run of this wallet ended
    with before the session refuses to start (0: exactly; docs/live.md, "Starting inventory")."""


class AppConfig(_Cfg):
    mode: Literal["shadow", "paper", "live"] = "paper"
    fills: Literal["none", "sim"] = "sim"
    """Paper mode only: none = record would-place/would-cancel; sim = simulated fills against the live book."""
    exchange: ExchangeConfig = ExchangeConfig()
    markets: tuple[MarketSelector, ...] = ()
    """Empty: the first ``auto_markets`` reward-eligible markets the exchange lists (sandbox only)."""
    auto_markets: Annotated[int, Meta(ge=1, le=3)] = 2
    quoter: QuoterParams = QuoterParams()
    orders: OrderParams = OrderParams()
    risk: RiskParams = RiskParams()
    sim: SimParams = SimParams()
    feed: FeedConfig = FeedConfig()
    journal_dir: str = "journals"
    status_file: str = "status.json"
    """Rewritten atomically every second while a session runs (read it with `pmm status`)."""
    publish_dir: str = ""
    """If set: a folder (e.g. one synced to an observer) that gets a copy of status.json and an append-only
    summary.jsonl (one line a minute). The trading process only writes there, never reads."""
    tick_ms: Annotated[int, Meta(ge=10, le=5000)] = 250
    seed: Annotated[int, Meta(ge=0, le=2**63 - 1)] = 0
    """Seed of the edges' randomness (reconnect jitter). 0: drawn at start; journaled either way."""
    supervisor: SupervisorConfig = SupervisorConfig()
    storage: StorageConfig = StorageConfig()
    """Old run journals kept, free disk space needed (docs/config.md#storage)."""
    live: LiveConfig = LiveConfig()
    """Live trading (`pmm live`, `pmm preflight`). Off unless ``live.enabled``; see docs/live.md."""


class ConfigError(ValueError):
    """The config cannot be used. The message is one line: file, field path, what is wrong, what is allowed.

    ``problems`` holds one such line per problem found (``pmm config check`` prints them all); the message is the
    first, with a count of the others.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = list(problems) if problems else [message]
        super().__init__(message)


def load_config(path: Path | None) -> AppConfig:
    """Load and validate ``path``; ``None`` gives the safe defaults (paper, sandbox, tiny caps)."""
    if path is None:
        return AppConfig()
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file (create one with `pmm config init`)") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_config(raw, str(path))


def parse_config(raw: bytes, name: str = "config.json") -> AppConfig:
    """Validate the bytes of a config file. msgspec decides what is valid; the messages are written here."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a UTF-8 byte-order mark some editors add
    _, problem = _json_problem(raw)  # also refuses a field given twice, which msgspec would silently accept
    if not problem:
        try:
            return msgspec.json.decode(raw, type=AppConfig)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            problems = [_one_line(f"{name}: {p}") for p in describe_problems(raw, exc)]
    else:
        problems = [_one_line(f"{name}: {p}") for p in describe_problems(raw)]
    if len(problems) == 1:
        raise ConfigError(problems[0], problems)
    more = len(problems) - 1
    raise ConfigError(f"{problems[0]} (and {more} more problem{'s' if more > 1 else ''}: "
                      f"`pmm config check --path {name}` lists them)", problems)


# ----------------------------------------------------------------- error messages
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def _one_line(text: str) -> str:
    """A problem line with control characters (a field name like "a\\nb" in the file) shown escaped, so that the
    message stays one line (found by tests/test_fuzz.py)."""
    return _CONTROL.sub(lambda m: json.dumps(m.group(0))[1:-1], text)


_MICRO = 1_000_000
_SHARES = {"size", "max_position", "max_order_size", "min_order_size", "reward_min_size", "position_tolerance"}
_PRICES = {"spread", "level_spacing", "refresh_tolerance", "price_band", "tick", "reward_max_spread"}
_DOLLARS = {"max_order_notional", "max_total_notional", "max_loss", "daily_loss", "reduce_loss"}
_HEX64 = re.compile(r"(?<![0-9a-fA-F])(0x)?[0-9a-fA-F]{64}(?![0-9a-fA-F])")


def _num(v: float) -> str:
    return f"{v:,.6f}".rstrip("0").rstrip(".").replace(",", "")


def unit_hint(field: str, default: object = None) -> str:
    """The unit of a numeric field, with an example (from its default when it has one)."""
    ex = default if isinstance(default, int | float) and not isinstance(default, bool) and default else None
    if field in _SHARES:
        ex = ex or 50 * _MICRO
        return f"in micro-shares: {ex} = {_num(ex / _MICRO)} shares"
    if field in _PRICES:
        ex = ex or 10_000
        return f"in micro-dollars per share: {ex} = ${_num(ex / _MICRO)}"
    if field in _DOLLARS:
        ex = ex or 20 * _MICRO
        return f"in micro-dollars: {ex} = ${_num(ex / _MICRO)}"
    if field == "skew_per_share":
        ex = ex or 100
        return f"in micro-dollars per share of position: {ex} = ${_num(ex / _MICRO)}"
    if field == "size_tolerance":
        ex = ex or 200_000
        return f"in millionths: {ex} = {_num(ex / 10_000)}%"
    if field.endswith("_ns"):
        ex = ex or 30 * 10**9
        return f"in nanoseconds: {ex} = {_num(ex / 1e9)} s"
    if field.endswith("_ms"):
        return "in milliseconds"
    if field.endswith("_s"):
        return "in seconds"
    return ""


def _show(value: object) -> str:
    """A value from the file, as JSON, shortened, with anything shaped like a private key hidden."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    text = _HEX64.sub(lambda m: (m.group(1) or "") + "<64 hex digits hidden>", text)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list [...]"
    if isinstance(value, dict):
        return "an object {...}"
    return type(value).__name__


def _range(lo: object, lo_strict: bool, hi: object, what: str, value: object = None) -> str:
    def n(v: object) -> str:
        return _num(v) if isinstance(v, float) else str(v)

    # a bound of 10^12 or more is only a sanity limit: named only when the value goes past it
    huge = (isinstance(hi, int | float) and hi >= 10**12
            and not (isinstance(value, int | float) and not isinstance(value, bool) and value > hi))
    if lo is not None and hi is not None and not huge and not lo_strict:
        return f"{what} from {n(lo)} to {n(hi)}"
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_strict else '>='} {n(lo)}")
    if hi is not None and not huge:
        parts.append(f"<= {n(hi)}")
    return f"{what} " + " and ".join(parts) if parts else what


def _closest(word: str, choices: list[str]) -> str:
    import difflib

    m = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return m[0] if m else ""


def _check(value: object, t: Any, path: str, field: str, default: object, out: list[str]) -> None:
    """Append one line per problem of ``value`` against the msgspec type info ``t``."""
    ti = msgspec.inspect
    where = f"{path}: " if path else ""
    got = f"(got {_show(value)})"
    hint = unit_hint(field, default)
    hint = f", {hint}" if hint else ""
    if isinstance(t, ti.StructType):
        if not isinstance(value, dict):
            out.append(f"{where}must be an object {{...}} with fields like \"{t.fields[0].name}\" (got {_kind(value)})")
            return
        known = {f.name: f for f in t.fields}
        for key, v in value.items():
            sub = f"{path}.{key}" if path else key
            f = known.get(key)
            if f is None:
                close = _closest(key, list(known))
                tip = (f'did you mean "{close}"?' if close else "allowed here: " + ", ".join(known))
                out.append(f"{sub}: unknown field ({tip})")
                continue
            _check(v, f.type, sub, key, f.default, out)
        return
    if isinstance(t, ti.VarTupleType | ti.ListType | ti.TupleType):
        if not isinstance(value, list):
            out.append(f"{where}must be a list [...] (got {_kind(value)})")
            return
        item_t = getattr(t, "item_type", None)
        if getattr(t, "max_length", None) is not None and len(value) > t.max_length:
            out.append(f"{where}at most {t.max_length} entries (got {len(value)})")
        if item_t is not None:
            for i, v in enumerate(value):
                _check(v, item_t, f"{path}[{i}]", field, None, out)
        return
    if isinstance(t, ti.LiteralType):
        if value not in t.values or isinstance(value, bool):
            allowed = ", ".join(json.dumps(v) for v in sorted(t.values, key=str))
            out.append(f"{where}must be one of {allowed} {got}")
        return
    if isinstance(t, ti.BoolType):
        if not isinstance(value, bool):
            out.append(f"{where}must be true or false, without quotes {got}")
        return
    if isinstance(t, ti.StrType):
        if not isinstance(value, str):
            out.append(f"{where}must be text in double quotes {got}")
        elif t.max_length is not None and len(value) > t.max_length:
            out.append(f"{where}must be at most {t.max_length} characters long (got {len(value)})")
        elif t.min_length is not None and len(value) < t.min_length:
            out.append(f"{where}must be at least {t.min_length} characters long {got}")
        return
    if isinstance(t, ti.IntType):
        lo = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else None)
        hi = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else None)
        want = _range(lo, False, hi, "must be a whole number", value)
        bad = (not isinstance(value, int) or isinstance(value, bool)
               or (lo is not None and value < lo) or (hi is not None and value > hi))
        if bad:
            if isinstance(value, float) and value.is_integer():
                got = f"(got {_show(value)}: write it without a decimal point)"
            out.append(f"{where}{want}{hint} {got}")
        return
    if isinstance(t, ti.FloatType):
        lo, strict = (t.gt, True) if t.gt is not None else (t.ge, False)
        hi = t.le if t.le is not None else t.lt
        want = _range(lo, strict, hi, "must be a number", value)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok:
            fv = float(value)  # type: ignore[arg-type]
            ok = (fv == fv and (lo is None or (fv > lo if strict else fv >= lo))
                  and (hi is None or fv <= hi))
        if not ok:
            out.append(f"{where}{want}{hint} {got}")
        return
    # a type this walker does not describe: leave it to msgspec's own message


def _json_problem(raw: bytes) -> tuple[object, str]:
    """Parse with the standard library for its line/column messages and to catch a field given twice."""
    if not raw.strip():
        return None, "the file is empty (write {} for all the defaults, or run `pmm config init`)"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (byte {exc.start}): save it as plain text (UTF-8)"
    if any(q in text for q in "\u201c\u201d\u2018\u2019"):
        return None, ("not valid JSON: it contains curly quotes \u201c \u201d (an editor's \"smart quotes\"); use "
                      "straight quotes \" (in TextEdit: Edit > Substitutions > Smart Quotes off, Format > Make Plain Text)")
    dup: list[str] = []

    def pairs(items: list[tuple[str, object]]) -> dict[str, object]:
        d: dict[str, object] = {}
        for k, v in items:
            if k in d and not dup:
                dup.append(k)
            d[k] = v
        return d

    try:
        obj = json.loads(text, object_pairs_hook=pairs, parse_constant=lambda c: float("nan"))
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
    except RecursionError:
        return None, "not valid JSON: nested too deeply"
    if dup:
        return obj, f'the field "{dup[0]}" is given twice (each field may appear once per object)'
    return obj, ""


def describe_problems(raw: bytes, exc: Exception | None = None) -> list[str]:
    """One line per problem in a config file's bytes (without the file name). Empty when it is valid."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    obj, problem = _json_problem(raw)
    if problem and obj is None:
        return [problem]
    out: list[str] = [problem] if problem else []
    if not isinstance(obj, dict):
        return [f"must be one JSON object {{...}} (got {_kind(obj)})"]
    _check(obj, msgspec.inspect.type_info(AppConfig), "", "", None, out)
    if out:
        return out
    if exc is None:
        try:
            msgspec.json.decode(raw, type=AppConfig)
            return []
        except (msgspec.ValidationError, msgspec.DecodeError) as e:
            exc = e
    return [_translate(str(exc))]


def _translate(msg: str) -> str:
    """msgspec's own message, reworded when it has the usual shape (a fallback: the walker above covers the rest)."""
    m = re.fullmatch(r"(.*?) - at `\$\.?(.*)`", msg)
    text, where = (m.group(1), m.group(2)) if m else (msg, "")
    text = re.sub(r"^Expected `int`", "must be a whole number", text)
    text = re.sub(r"^Expected `float`", "must be a number", text)
    text = text.replace("`", "")
    return f"{where}: {text}" if where else text


def config_hash(cfg: AppConfig) -> str:
    return hashlib.sha256(msgspec.json.encode(cfg, order="sorted")).hexdigest()
