"""`pmm bundle build --platform macos-arm64|macos-x86_64|linux-x86_64 [--out dist]`: the Operator Bundle.

One zip, ``<out>/pmm-operator-<version>-<platform>.zip``, holding one folder with everything an operator needs
to run pmm on a computer with no developer tools (no Node, Git, Homebrew, compilers or pip):

- ``Start (Paper).command``, ``Start (Live).command``, ``Stop.command``, ``Status.command``,
  ``Install Auto-Start.command``, ``Uninstall Auto-Start.command`` (double-click on a Mac; bash scripts);
- ``config.json`` (safe defaults: paper, the built-in sandbox exchange, small caps) and ``READ ME FIRST.txt``;
- ``support/``: ``uv`` (the binary, taken from PyPI's uv wheel for the platform), ``wheels/`` (pmm's own wheel
  and every dependency as binary wheels for the platform and each supported Python), ``common.sh`` (what the
  scripts share: find or install Python, create ``.venv`` on first run, offline), the launchd plist template,
  ``MANIFEST.txt`` (versions, sha256 of every file).

Built with the running Python's pip: ``pip wheel --no-deps`` of a clean copy of the project (the source tree is
not touched), then ``pip download --only-binary=:all: --platform ... --python-version ...`` of its
dependencies. Needs PyPI (or the configured index); fails with one line if it cannot reach it.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "templates"
PACKAGES = ("pmm", "events", "journal", "actors", "replay", "sandbox", "bundle")
DEFAULT_PYTHONS = ("3.11", "3.12", "3.13")
EXIT_FAIL, EXIT_USAGE = 1, 2


@dataclass(frozen=True)
class Platform:
    name: str
    wheel_tags: tuple[str, ...]
    """--platform values for pip download (pip also accepts older macOS versions and universal2 for a mac tag)."""
    uv_tag: str
    min_os: str


PLATFORMS = {
    p.name: p for p in (
        Platform("macos-arm64", ("macosx_12_0_arm64",), "macosx_12_0_arm64", "macOS 12 (Monterey) or newer, Apple silicon"),
        Platform("macos-x86_64", ("macosx_12_0_x86_64",), "macosx_12_0_x86_64", "macOS 12 (Monterey) or newer, Intel"),
        Platform("linux-x86_64", ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"),
                 "manylinux_2_17_x86_64", "Linux x86_64 with glibc 2.28 or newer"),
    )
}

PLACE = {"com.pmm.operator.plist": "support/com.pmm.operator.plist"}
"""Templates that do not go to the same place in the bundle."""
EXECUTABLE = re.compile(r"(\.command|\.sh|^uv)$")


class BuildError(RuntimeError):
    """The bundle cannot be built. One line, for the builder."""


def _err(msg: str) -> None:
    print(f"pmm: {msg}", file=sys.stderr)


def project_version(root: Path = ROOT) -> str:
    try:
        return tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise BuildError(f"bundle build needs a source checkout of pmm ({root / 'pyproject.toml'}: {exc})") from None


def _pip(args: list[str], what: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired:
        raise BuildError(f"{what}: pip did not finish within 30 min") from None
    if res.returncode != 0:
        lines = [ln.strip() for ln in (res.stderr + res.stdout).splitlines()
                 if ln.strip() and not ln.startswith("WARNING")]
        errors = [ln for ln in lines if ln.startswith("ERROR")] or lines
        raise BuildError(f"{what}: {errors[-1] if errors else f'pip exited with {res.returncode}'}")


def _clean_source_copy(dest: Path) -> None:
    """pyproject, README and the packages only (no tests, journals, caches), so building leaves ROOT alone."""
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "templates")
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=ignore)


def build_wheels(wheels: Path, plat: Platform, pythons: tuple[str, ...], work: Path, log=print) -> Path:
    """pmm's wheel plus every dependency, binary only, for ``plat`` and each Python in ``pythons``."""
    src = work / "src"
    _clean_source_copy(src)
    log("building pmm's wheel (pip wheel --no-deps)")
    _pip(["wheel", "--no-deps", "--quiet", "--wheel-dir", str(wheels), str(src)], "building pmm's wheel")
    (own,) = wheels.glob("pmm-*.whl")
    tags = [a for t in plat.wheel_tags for a in ("--platform", t)]
    for py in pythons:
        log(f"downloading dependencies for Python {py} on {plat.name} (pip download --only-binary=:all:)")
        _pip(["download", "--quiet", "--only-binary=:all:", *tags, "--python-version", py, "--implementation", "cp",
              "--dest", str(wheels), str(own)], f"downloading the dependencies for Python {py} on {plat.name}")
    return own


def fetch_uv(dest: Path, plat: Platform, uv_spec: str, work: Path, log=print) -> str:
    """The uv binary for ``plat``, taken out of PyPI's uv wheel. Returns uv's version."""
    log(f"downloading uv for {plat.name}")
    d = work / "uv"
    _pip(["download", "--quiet", "--only-binary=:all:", "--no-deps", "--platform", plat.uv_tag, "--python-version",
          "3.11", "--dest", str(d), uv_spec], f"downloading uv for {plat.name}")
    (whl,) = d.glob("uv-*.whl")
    with zipfile.ZipFile(whl) as z:
        names = [n for n in z.namelist() if re.fullmatch(r"uv-[^/]+\.data/scripts/uv", n)]
        if not names:
            raise BuildError(f"{whl.name} has no uv binary")
        dest.write_bytes(z.read(names[0]))
    dest.chmod(0o755)
    return whl.name.split("-")[1]


def _render(text: str, values: dict[str, str]) -> str:
    for k, v in values.items():
        text = text.replace(f"@{k}@", v)
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise BuildError(f"template placeholder {left[0]} has no value")
    return text


def _default_config() -> bytes:
    import msgspec

    from pmm.config import parse_config
    from pmm.configcmd import MICRO, build_config

    data = build_config(mode="paper", markets=[], order_size=50 * MICRO, position=200 * MICRO, daily_loss=20 * MICRO)
    raw = msgspec.json.format(msgspec.json.encode(data), indent=2) + b"\n"
    parse_config(raw, "config.json")  # the bundle's config must load
    return raw


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def assemble(folder: Path, plat: Platform, version: str, pythons: tuple[str, ...], uv_spec: str, work: Path,
             log=print) -> None:
    support = folder / "support"
    wheels = support / "wheels"
    wheels.mkdir(parents=True)
    build_wheels(wheels, plat, pythons, work, log)
    uv_version = fetch_uv(support / "uv", plat, uv_spec, work, log)
    wheel_names = sorted(p.name for p in wheels.glob("*.whl"))
    bundle_id = hashlib.sha256("\n".join([version, plat.name, *wheel_names]).encode()).hexdigest()[:16]
    values = {"VERSION": version, "PLATFORM": plat.name, "PYTHONS": " ".join(pythons), "BUNDLE_ID": bundle_id,
              "MIN_OS": plat.min_os, "PYTHONS_TEXT": _or_list(pythons), "UV_VERSION": uv_version}
    for tpl in sorted(TEMPLATES.rglob("*")):
        if tpl.is_dir():
            continue
        rel = tpl.relative_to(TEMPLATES)
        out = folder / PLACE.get(rel.as_posix(), rel)
        out.parent.mkdir(parents=True, exist_ok=True)
        text = _render(tpl.read_text(encoding="utf-8"), values)
        if rel.suffix in (".command", ".sh"):
            text = text.replace("\r\n", "\n")
        out.write_text(text, encoding="utf-8")
        out.chmod(0o755 if EXECUTABLE.search(rel.name) else 0o644)
    (folder / "config.json").write_bytes(_default_config())
    manifest = [f"pmm operator bundle {version} for {plat.name} ({plat.min_os})",
                f"built {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())} with Python "
                f"{sys.version.split()[0]}; bundle id {bundle_id}",
                f"runs on Python {', '.join(pythons)}; uv {uv_version}", "", "sha256  file"]
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            manifest.append(f"{_sha256(p)}  {p.relative_to(folder).as_posix()}")
    (support / "MANIFEST.txt").write_text("\n".join(manifest) + "\n", encoding="utf-8")


def _or_list(items: tuple[str, ...]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def write_zip(folder: Path, zip_path: Path) -> None:
    """Zip ``folder`` (as its top-level folder), keeping Unix permissions so the scripts stay executable."""
    tmp = zip_path.with_name(f".{zip_path.name}.{os.getpid()}.tmp")
    now = time.localtime()[:6]
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        for p in [folder, *sorted(folder.rglob("*"))]:
            arc = (Path(folder.name) / p.relative_to(folder)).as_posix()
            if p.is_dir():
                zi = zipfile.ZipInfo(arc + "/", date_time=now)
                zi.external_attr = ((stat.S_IFDIR | 0o755) << 16) | 0x10
                z.writestr(zi, b"")
                continue
            zi = zipfile.ZipInfo(arc, date_time=now)
            zi.create_system = 3  # Unix: external_attr holds the mode
            mode = p.stat().st_mode & 0o777
            zi.external_attr = (stat.S_IFREG | mode) << 16
            zi.compress_type = zipfile.ZIP_STORED if p.suffix == ".whl" else zipfile.ZIP_DEFLATED
            with open(p, "rb") as f:
                z.writestr(zi, f.read())
    os.replace(tmp, zip_path)


def build(platform: str, out: Path, *, pythons: tuple[str, ...] = DEFAULT_PYTHONS, uv_spec: str = "uv",
          log=print) -> Path:
    """Build the bundle for ``platform`` into ``out``; returns the zip's path."""
    plat = PLATFORMS[platform]
    version = project_version()
    if not TEMPLATES.is_dir():
        raise BuildError(f"bundle build needs a source checkout of pmm ({TEMPLATES} is missing)")
    name = f"pmm-operator-{version}-{plat.name}"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pmm-bundle-") as tmp:
        work = Path(tmp)
        folder = work / "out" / name
        folder.mkdir(parents=True)
        assemble(folder, plat, version, pythons, uv_spec, work, log)
        zip_path = out / f"{name}.zip"
        write_zip(folder, zip_path)
    return zip_path


def build_parser() -> argparse.ArgumentParser:
    from pmm.args import Parser as _Parser

    p = _Parser(prog="pmm bundle", description="Build the operator bundle (docs/builder.md).")
    sub = p.add_subparsers(dest="bundle_cmd", required=True, parser_class=_Parser, metavar="build")
    b = sub.add_parser("build", help="write dist/pmm-operator-<version>-<platform>.zip")
    b.add_argument("--platform", required=True, choices=sorted(PLATFORMS), help="the operator's computer")
    b.add_argument("--out", default="dist", metavar="DIR", help="output folder (default dist)")
    b.add_argument("--python", action="append", metavar="X.Y", dest="pythons",
                   help=f"a Python version to include wheels for (repeatable; default {' '.join(DEFAULT_PYTHONS)})")
    b.add_argument("--uv", default="uv", metavar="SPEC", help="uv requirement to bundle (default: the newest uv)")
    return p


def bundle_main(argv: list[str]) -> int:
    """`pmm bundle build --platform P [--out DIR]` (argv: what follows `pmm bundle`)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    pythons = tuple(args.pythons or DEFAULT_PYTHONS)
    bad = [v for v in pythons if not re.fullmatch(r"3\.(1[1-9]|[2-9]\d)", v)]
    if bad:
        _err(f"bundle build: --python {bad[0]}: must be a Python version 3.11 or newer, like 3.12")
        return EXIT_USAGE
    t0 = time.monotonic()
    try:
        zip_path = build(args.platform, Path(args.out), pythons=pythons, uv_spec=args.uv,
                         log=lambda m: print(f"pmm bundle: {m}", flush=True))
    except BuildError as exc:
        _err(f"bundle build: {exc}")
        return EXIT_FAIL
    except OSError as exc:
        _err(f"bundle build: {exc.filename or ''}: {exc.strerror}")
        return EXIT_FAIL
    size = zip_path.stat().st_size
    print(f"wrote {zip_path} ({size / 1e6:.1f} MB) in {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(bundle_main(sys.argv[1:]))
