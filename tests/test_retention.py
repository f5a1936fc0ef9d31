"""Journal retention (pmm/retention.py, `pmm prune`): what is deleted, in which order, and everything never deleted.

Run folders are built on disk as the journal lays them out (LOCK, ``seg-<20 digits>.pmj`` beginning with the magic
bytes); their sizes come from sparse files, so gigabytes cost no disk.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from journal.format import MAGIC as JOURNAL_MAGIC
from pmm import retention
from pmm.retention import GB, delete_run, plan, scan

SEG = "seg-00000000000000000001.pmj"


def rid(day: int, mode: str = "paper", pid: int = 0) -> str:
    return f"202611{day:02d}-120000-{mode}-{pid or 4000 + day}"


def make_run(root: Path, run_id: str, size: int = 10_000, *, segments: int = 1) -> Path:
    d = root / run_id
    d.mkdir(parents=True)
    (d / "LOCK").touch()
    for i in range(segments):
        seg = d / f"seg-{1 + i * 1000:020d}.pmj"
        seg.write_bytes(retention.MAGIC)
        os.truncate(seg, max(size // segments, len(retention.MAGIC)))  # sparse: no disk used
    return d


def tree(path: Path) -> dict[str, str]:
    """Every file under ``path`` (links not followed) with a hash of its bytes: to prove nothing changed."""
    out = {}
    for p in sorted(path.rglob("*")):
        rel = str(p.relative_to(path))
        if p.is_symlink():
            out[rel] = "link->" + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def prune(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pmm.cli", "prune", *args], capture_output=True, text=True,
                          timeout=60)


def test_magic_is_the_journals() -> None:
    assert retention.MAGIC == JOURNAL_MAGIC


def test_oldest_first_beyond_keep_runs_never_the_newest(tmp_path: Path) -> None:
    root = tmp_path / "journals"
    runs = [make_run(root, rid(d)) for d in (3, 1, 5, 2, 4)]  # created out of order: the run id decides
    pl = plan(root, keep_runs=3, max_journal_gb=20)
    assert [r.run_id for r in pl.runs] == [rid(d) for d in (1, 2, 3, 4, 5)]
    assert [d.run.run_id for d in pl.delete] == [rid(1), rid(2)]
    assert pl.delete[0].reason == "more than storage.keep_runs = 3 runs (5)"
    assert pl.delete[1].reason == "more than storage.keep_runs = 3 runs (4)"
    logged: list[str] = []
    out = retention.apply(pl, logged.append)
    assert [d.run.run_id for d in out.deleted] == [rid(1), rid(2)] and not out.failed
    assert sorted(p.name for p in root.iterdir()) == [rid(3), rid(4), rid(5)]
    assert logged == [f"deleted old run {rid(1)} (10 KB): more than storage.keep_runs = 3 runs (5)",
                      f"deleted old run {rid(2)} (10 KB): more than storage.keep_runs = 3 runs (4)"]
    assert all(p.exists() for p in runs if p.name not in (rid(1), rid(2)))

    # keep_runs = 1 still keeps the newest; and a second pass has nothing left to do
    pl = plan(root, keep_runs=1, max_journal_gb=20)
    assert [d.run.run_id for d in pl.delete] == [rid(3), rid(4)]
    retention.apply(pl, logged.append)
    assert [p.name for p in root.iterdir()] == [rid(5)]
    assert plan(root, keep_runs=1, max_journal_gb=0.000001).delete == []  # the newest, whatever the size


def test_total_size_limit_deletes_oldest_until_under(tmp_path: Path) -> None:
    root = tmp_path / "journals"
    for d in range(1, 6):
        make_run(root, rid(d), size=400_000_000, segments=4)  # 5 x 0.4 GB = 2 GB
    pl = plan(root, keep_runs=30, max_journal_gb=1)
    assert pl.total_bytes == 2 * GB
    assert [d.run.run_id for d in pl.delete] == [rid(1), rid(2), rid(3)]  # 2.0 -> 1.6 -> 1.2 -> 0.8 GB
    assert pl.delete[0].reason == "the journals use 2.0 GB, more than storage.max_journal_gb = 1 GB"
    assert pl.delete[2].reason == "the journals use 1.2 GB, more than storage.max_journal_gb = 1 GB"
    assert sum(r.bytes for r in pl.kept) == 800_000_000
    logged: list[str] = []
    retention.apply(pl, logged.append)
    assert logged[0] == (f"deleted old run {rid(1)} (400.0 MB): the journals use 2.0 GB, more than "
                         "storage.max_journal_gb = 1 GB")
    assert sorted(p.name for p in root.iterdir()) == [rid(4), rid(5)]
    assert retention.usage(root) == (800_000_000, 2)


def test_a_run_being_written_is_never_deleted(tmp_path: Path) -> None:
    root = tmp_path / "journals"
    for d in range(1, 5):
        make_run(root, rid(d))
    # a journal writer holds flock(LOCK_EX) on LOCK while it writes (a second fd conflicts, even in this process)
    fd = os.open(root / rid(1) / "LOCK", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        pl = plan(root, keep_runs=1, max_journal_gb=20)
        assert [r.in_use for r in pl.runs] == [True, False, False, False]
        assert [d.run.run_id for d in pl.delete] == [rid(2), rid(3)]
        # planned while free, written to before the deletion: checked again, left alone
        pl = plan(root, keep_runs=1, max_journal_gb=20)
        fd2 = os.open(root / rid(2) / "LOCK", os.O_RDWR)
        fcntl.flock(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB)
        logged: list[str] = []
        out = retention.apply(pl, logged.append)
        os.close(fd2)
        assert [d.run.run_id for d, _ in out.failed] == [rid(2)]
        assert "its journal is in use" in logged[0] and logged[0].startswith(f"kept old run {rid(2)}")
        assert [d.run.run_id for d in out.deleted] == [rid(3)]
    finally:
        os.close(fd)
    assert sorted(p.name for p in root.iterdir()) == [rid(1), rid(2), rid(4)]


def test_anything_that_is_not_a_pmm_run_is_skipped_and_never_deleted(tmp_path: Path) -> None:
    root = tmp_path / "journals"
    elsewhere = tmp_path / "builder"
    target = make_run(elsewhere, rid(7))  # a builder's own copy of a run, outside the journal folder
    outside_file = elsewhere / "precious.bin"
    outside_file.write_bytes(retention.MAGIC + b"keep me")
    for d in (1, 2, 3, 20, 21):
        make_run(root, rid(d))
    make_run(root, "kill_position_limit")  # a proof journal: a journal, but not named like a run
    (make_run(root, rid(4)) / "notes.txt").write_text("the operator's notes")
    (make_run(root, rid(5)) / "KEEP").touch()
    (make_run(root, rid(6)) / "sub").mkdir()
    (root / rid(8)).mkdir()  # named like a run, no segment
    (root / rid(8) / "LOCK").touch()
    make_run(root, rid(9))
    (root / rid(9) / SEG).write_bytes(b"not a journal at all")
    os.symlink(target, root / rid(10))  # a link to a run elsewhere
    make_run(root, rid(11))
    os.symlink(outside_file, root / rid(11) / "seg-00000000000000000099.pmj")  # a segment that is a link
    make_run(root, rid(12))
    (root / rid(12) / "seg-00000000000000000001 copy.pmj").write_bytes(retention.MAGIC)
    (root / "README.txt").write_text("a file beside the runs")
    (root / ".DS_Store").write_bytes(b"\0")
    (root / rid(4, "chaos")).mkdir()  # not a pmm mode
    before = tree(root)
    before_elsewhere = tree(elsewhere)

    runs, skipped = scan(root)
    assert [r.run_id for r in runs] == [rid(d) for d in (1, 2, 3, 20, 21)]
    why = {s.path.name: s.why for s in skipped}
    assert why == {
        "kill_position_limit": "not named like a pmm run (YYYYMMDD-HHMMSS-mode-pid)",
        rid(4, "chaos"): "not named like a pmm run (YYYYMMDD-HHMMSS-mode-pid)",
        rid(4): "holds 'notes.txt', which is not part of a journal",
        rid(5): "holds 'KEEP', which is not part of a journal",
        rid(6): "holds 'sub', which is not a plain file",
        rid(8): "holds no journal segment (seg-*.pmj)",
        rid(9): f"{SEG} does not begin like a journal segment",
        rid(10): "a symbolic link, not a folder",
        rid(11): "holds 'seg-00000000000000000099.pmj', which is not a plain file",
        rid(12): "holds 'seg-00000000000000000001 copy.pmj', which is not part of a journal",
    }
    pl = plan(root, keep_runs=1, max_journal_gb=0.000001)
    assert [d.run.run_id for d in pl.delete] == [rid(d) for d in (1, 2, 3, 20)]
    retention.apply(pl, lambda _: None)
    after = tree(root)
    gone = {k for k in before if k.split("/")[0] in {rid(d) for d in (1, 2, 3, 20)}}
    assert after == {k: v for k, v in before.items() if k not in gone}
    assert tree(elsewhere) == before_elsewhere and outside_file.read_bytes().endswith(b"keep me")
    # delete_run itself refuses what is not a run, whoever calls it
    for name in (rid(4), rid(10), rid(11), "kill_position_limit"):
        assert delete_run(root / name)
    assert tree(root) == after and tree(elsewhere) == before_elsewhere


def test_a_file_that_appears_during_the_deletion_is_left_with_its_folder(tmp_path: Path) -> None:
    root = tmp_path / "journals"
    for d in (1, 2):
        make_run(root, rid(d))
    pl = plan(root, keep_runs=1, max_journal_gb=20)
    (root / rid(1) / "notes.txt").write_text("written after the plan")
    logged: list[str] = []
    out = retention.apply(pl, logged.append)
    assert not out.deleted and (root / rid(1) / "notes.txt").read_text() == "written after the plan"
    assert logged[0].startswith(f"kept old run {rid(1)}") and "notes.txt" in logged[0]


def test_free_space_probe_and_its_test_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = retention.free_bytes(tmp_path / "not" / "there" / "yet")  # the nearest existing parent's disk
    assert real > 0
    hook = tmp_path / "free"
    hook.write_text("1500000000\n")
    monkeypatch.setenv(retention.TEST_FREE_ENV, str(hook))
    monkeypatch.delenv(retention.TEST_MODE_ENV, raising=False)
    assert retention.free_probe() is retention.free_bytes  # the hook alone does nothing
    monkeypatch.setenv(retention.TEST_MODE_ENV, "1")
    probe = retention.free_probe()
    assert probe(tmp_path) == 1_500_000_000
    hook.write_text("2.5e9")
    assert probe(tmp_path) == 2_500_000_000  # read again at each probe: a disk that fills or empties
    hook.write_text("lots")
    with pytest.raises(OSError):
        probe(tmp_path)
    assert retention.low_space(1_999_999_999, 2) and not retention.low_space(2 * GB, 2)
    assert not retention.low_space(0, 0)  # 0: the check is off


# ---------------------------------------------------------------- `pmm prune`
def test_pmm_prune_dry_run_then_for_real_logged(tmp_path: Path) -> None:
    data = tmp_path / "data dir"
    root = data / "journals"
    for d in range(1, 6):
        make_run(root, rid(d), size=300_000_000)
    make_run(root, "kill_operator_stop")
    (data / "config.json").write_text('{"storage": {"keep_runs": 4, "max_journal_gb": 0.7}}')
    before = tree(root)

    res = prune("--dry-run", "--data", str(data))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith(f"journals  {root}: 5 runs, 1.5 GB; kept: the last 4 runs and at most 0.7 GB")
    assert lines[1] == ("skipped   kill_operator_stop: not named like a pmm run (YYYYMMDD-HHMMSS-mode-pid) "
                        "(never deleted)")
    assert lines[2:5] == [f"would delete {rid(1)} (300.0 MB): more than storage.keep_runs = 4 runs (5)",
                          f"would delete {rid(2)} (300.0 MB): the journals use 1.2 GB, more than "
                          "storage.max_journal_gb = 0.7 GB",
                          f"would delete {rid(3)} (300.0 MB): the journals use 900.0 MB, more than "
                          "storage.max_journal_gb = 0.7 GB"]
    assert lines[5] == "dry run: 3 runs would be deleted (900.0 MB), 2 kept (600.0 MB); nothing was changed"
    assert tree(root) == before and not (data / "logs").exists()

    res = prune("--data", str(data))
    assert res.returncode == 0, res.stderr
    assert f"deleted old run {rid(1)} (300.0 MB): more than storage.keep_runs = 4 runs (5)" in res.stdout
    assert res.stdout.splitlines()[-1].startswith("deleted 3 runs (900.0 MB); 2 kept (600.0 MB); ")
    assert sorted(p.name for p in root.iterdir()) == [rid(4), rid(5), "kill_operator_stop"]
    log = (data / "logs" / "supervisor.log").read_text().splitlines()
    assert [ln.split(" pmm prune: ")[1] for ln in log] == [
        f"deleted old run {rid(1)} (300.0 MB): more than storage.keep_runs = 4 runs (5)",
        f"deleted old run {rid(2)} (300.0 MB): the journals use 1.2 GB, more than storage.max_journal_gb = 0.7 GB",
        f"deleted old run {rid(3)} (300.0 MB): the journals use 900.0 MB, more than storage.max_journal_gb = 0.7 GB",
    ]
    res = prune("--data", str(data))
    assert res.returncode == 0 and "deleted 0 runs (0 bytes); 2 kept" in res.stdout


def test_pmm_prune_deletes_nothing_while_pmm_runs_in_the_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    root = data / "journals"
    for d in range(1, 4):
        make_run(root, rid(d))
    (data / "config.json").write_text('{"storage": {"keep_runs": 1}}')
    before = tree(root)
    fd = os.open(data / "pmm.lock", os.O_RDWR | os.O_CREAT, 0o644)  # what a running supervisor holds
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        res = prune("--data", str(data))
        assert res.returncode == 1 and res.stderr.count("\n") == 1, res.stderr
        assert res.stderr.startswith(f"pmm: prune: pmm is running in {data}") and "nothing deleted" in res.stderr
        assert tree(root) == before
        res = prune("--dry-run", "--data", str(data))  # looking is fine
        assert res.returncode == 0 and f"would delete {rid(2)}" in res.stdout
        assert tree(root) == before
    finally:
        os.close(fd)


def test_pmm_prune_bad_input_is_one_line(tmp_path: Path) -> None:
    res = prune("--data", str(tmp_path / "missing"))
    assert res.returncode == 2 and res.stderr == f"pmm: prune: --data {tmp_path / 'missing'}: no such folder\n"
    (tmp_path / "config.json").write_text('{"storage": {"keep_runs": 0}}')
    res = prune("--data", str(tmp_path))
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "storage.keep_runs: must be a whole number from 1 to 100000 (got 0)" in res.stderr
    res = prune("--frobnicate")
    assert res.returncode == 2 and res.stderr.count("\n") == 1


def test_a_builders_journal_survives_replay_and_prune(tmp_path: Path) -> None:
    """A journal a builder works with (here a proof journal, copied into the operator's journal folder too) is
    only read by `pmm replay`, and never deleted by pruning, whatever the limits."""
    from replay.prove import run_proofs

    (res,) = run_proofs(tmp_path / "proofs", only=["kill_operator_stop"])
    builder = Path(res.journal)
    data = tmp_path / "data"
    root = data / "journals"
    root.mkdir(parents=True)
    copy = root / "kill_operator_stop"
    copy.mkdir()
    for p in builder.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    for d in range(1, 4):
        make_run(root, rid(d))
    (data / "config.json").write_text('{"storage": {"keep_runs": 1, "max_journal_gb": 0.000001}}')
    before, before_root = tree(builder), tree(copy)
    for journal in (builder, copy):
        for cmd in (["replay", "verify", str(journal)], ["replay", "show", str(journal), "--to", "5"]):
            out = subprocess.run([sys.executable, "-m", "pmm.cli", *cmd], capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
    done = prune("--data", str(data))
    assert done.returncode == 0 and "skipped   kill_operator_stop" in done.stdout
    assert tree(builder) == before and tree(copy) == before_root
    assert sorted(p.name for p in root.iterdir()) == [rid(3), "kill_operator_stop"]
