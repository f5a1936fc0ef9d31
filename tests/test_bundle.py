"""The operator bundle, built for real and run the way an operator would: unzipped into a folder whose path has a
space, a clean HOME, a minimal PATH (only a python3 and /usr/bin:/bin), no repository, no developer tools.

Needs PyPI (the build downloads wheels and uv): skipped, with the reason, when it cannot be reached. About half a
minute with a warm pip cache.
"""
from __future__ import annotations

import json
import os
import platform
import plistlib
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from events.control import RunEnded
from events.orders import OrderState
from journal import JournalReader
from pmm.config import AppConfig, load_config
from replay.journal_io import read_envelopes
from replay.verify import verify

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = "linux-x86_64"
SCRIPTS = ("Start (Paper).command", "Start (Live).command", "Stop.command", "Status.command",
           "Install Auto-Start.command", "Uninstall Auto-Start.command")

pytestmark = pytest.mark.skipif(not (sys.platform == "linux" and platform.machine() == "x86_64"),
                                reason="the bundle test runs the linux-x86_64 bundle, so it needs Linux x86_64")


def _pypi_reachable() -> str:
    """Empty if pip can download platform wheels from the index, else why not."""
    with tempfile.TemporaryDirectory() as d:
        try:
            res = subprocess.run(
                [sys.executable, "-m", "pip", "--disable-pip-version-check", "download", "--quiet", "--no-deps",
                 "--only-binary=:all:", "--platform", "manylinux_2_17_x86_64", "--python-version", "3.11",
                 "--dest", d, "crc32c", "uv"],  # a compiled dependency and uv: the real index, not a local mirror
                capture_output=True, text=True, timeout=180)
        except subprocess.TimeoutExpired:
            return "pip download timed out"
        if res.returncode != 0:
            return (res.stderr.strip().splitlines() or ["pip download failed"])[-1]
    return ""


def wait_for(pred, timeout: float, what: str):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def read_json(path: Path) -> dict:
    try:
        obj = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    why = _pypi_reachable()
    if why:
        pytest.skip(f"PyPI (the package index) is unreachable, so the bundle cannot be built: {why}")
    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run([sys.executable, "-m", "bundle.build", "build", "--platform", PLATFORM, "--out", str(out)],
                         capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    (zip_path,) = out.glob("*.zip")
    return zip_path


def test_the_zip_holds_everything_with_its_permissions(built: Path) -> None:
    assert built.name == f"pmm-operator-0.1.0-{PLATFORM}.zip"
    assert built.stat().st_size < 120e6
    top = f"pmm-operator-0.1.0-{PLATFORM}/"
    with zipfile.ZipFile(built) as z:
        infos = {i.filename.removeprefix(top): i for i in z.infolist()}
        for name in (*SCRIPTS, "support/uv", "support/common.sh"):
            mode = infos[name].external_attr >> 16
            assert stat.S_ISREG(mode) and mode & 0o111 == 0o111, (name, oct(mode))
        for name in ("config.json", "READ ME FIRST.txt", "support/MANIFEST.txt"):
            assert (infos[name].external_attr >> 16) & 0o777 == 0o644
        wheels = [n for n in infos if n.startswith("support/wheels/") and n.endswith(".whl")]
        assert any(n.startswith("support/wheels/pmm-0.1.0-") for n in wheels)
        for dep in ("msgspec", "trio", "httpx", "coincurve", "crc32c", "hypercorn"):
            for py in ("cp311", "cp312", "cp313"):
                assert any(n.split("/")[-1].lower().startswith(dep) and (py in n or "none-any" in n or "abi3" in n)
                           for n in wheels), (dep, py)
        assert not [n for n in wheels if "macosx" in n or "win" in n.split("-")[-1]]
        cfg = z.read(top + "config.json")
        plist = plistlib.loads(z.read(top + "support/com.pmm.operator.plist"))
        readme = z.read(top + "READ ME FIRST.txt").decode()
        scripts = {s: z.read(top + s).decode() for s in SCRIPTS}
    path = Path(tempfile.mkstemp(suffix=".json")[1])
    try:
        path.write_bytes(cfg)
        loaded = load_config(path)
    finally:
        path.unlink()
    assert loaded.mode == "paper" and loaded.exchange.rest_url == "" and loaded.risk == AppConfig().risk
    assert plist["Label"] == "com.pmm.operator" and plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False} and plist["EnvironmentVariables"]["PMM_LAUNCHD"] == "1"
    assert plist["ProgramArguments"] == ["/bin/bash", "__BUNDLE_DIR__/Start (Paper).command"]
    assert plist["WorkingDirectory"] == "__BUNDLE_DIR__" and plist["StandardOutPath"].endswith("/logs/launchd.log")
    for words in ("right-click", "Open Anyway", "xattr -dr com.apple.quarantine", "needs the internet",
                  "feed_stale", "prior_halt", "STALE", "status-report.json"):
        assert words.lower() in readme.lower(), words
    for name, text in scripts.items():
        assert text.startswith("#!/bin/bash\n") and 'cd "$(dirname "$0")"' in text, name
        assert "@" not in text.replace("$@", ""), name  # every placeholder was filled


def test_an_operator_runs_it_from_a_folder_with_a_space(built: Path, tmp_path: Path) -> None:
    where = tmp_path / "Operator Files"
    where.mkdir()
    if shutil.which("unzip"):
        subprocess.run(["unzip", "-q", str(built), "-d", str(where)], check=True, timeout=120)
    else:  # Python's zipfile drops permissions: put them back from the zip
        with zipfile.ZipFile(built) as z:
            z.extractall(where)
            for i in z.infolist():
                if not i.is_dir():
                    (where / i.filename).chmod((i.external_attr >> 16) & 0o777)
    (folder,) = where.iterdir()
    home = tmp_path / "clean home"
    home.mkdir()
    pybin = tmp_path / "python only"
    pybin.mkdir()
    (pybin / "python3").symlink_to(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
    env = {"HOME": str(home), "PATH": f"{pybin}:/usr/bin:/bin", "LANG": "C.UTF-8"}

    def run(script: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([str(folder / script)], capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=str(tmp_path))  # run from another folder: the scripts must find their own

    start = subprocess.Popen([str(folder / "Start (Paper).command"), "--duration", "300"], env=env, cwd=str(home),
                             stdout=open(tmp_path / "start.out", "wb"), stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: read_json(folder / "status.json").get("state") == "running"
                 and read_json(folder / "status.json").get("frames", 0) > 0, 300, "a running session")
        wait_for(lambda: read_json(folder / "status.json").get("open_orders", 0) > 0, 60, "resting orders")

        status = run("Status.command")
        assert status.returncode == 0, status.stdout + status.stderr
        assert "pmm: RUNNING" in status.stdout and "mode paper" in status.stdout
        report = json.loads((folder / "status-report.json").read_text())
        assert report["state"] == "running" and report["pmm_status"]["running"] is True

        stop = run("Stop.command", timeout=120)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert "stopped: state stopped" in stop.stdout
        assert start.wait(timeout=60) == 0
    finally:
        if start.poll() is None:
            subprocess.run([str(folder / "Stop.command")], env=env, timeout=120, capture_output=True)
            start.kill()
    out = (tmp_path / "start.out").read_text()
    assert "Setting up pmm in this folder" in out and "pmm has stopped" in out

    (run_dir,) = (folder / "journals").iterdir()
    envs = [env for _, _, env in read_envelopes(JournalReader(run_dir))]
    assert isinstance(envs[-1].ev, RunEnded)
    last: dict[str, str] = {}
    for e in envs:
        if isinstance(e.ev, OrderState):
            last[e.ev.client_id] = e.ev.state
    assert last and all(s in ("cancelled", "filled", "rejected") for s in last.values()), last
    assert verify(run_dir).ok
    assert read_json(folder / "status.json")["open_orders"] == 0

    # the shipped config is not a live config: whether this version has live mode or not, nothing starts
    live = run("Start (Live).command")
    assert live.returncode == 1, live.stdout + live.stderr
    assert ("Live trading is not available" in live.stdout and "Nothing was started" in live.stdout) or (
        "The check did NOT pass, so live trading was NOT started" in live.stdout)
    assert not list((folder / "journals").glob("*live*"))
    assert not list(home.iterdir()), "the bundle wrote into HOME"
