"""Makefile `quick-look`: what it hands DVC, and the dvc.lock it starts from (a fake `dvc` first
on PATH records both; nothing trains)."""

import os
import shutil
import stat
import subprocess
import sys

import pytest

from tests.helpers import REPO

FAKE_DVC = """#!/bin/sh
{{ echo "args $*"; echo "lock $(cat dvc.lock 2>/dev/null || echo absent)"; \
echo "warm ${{CNNLAB_WARM_PYTHON_SOCKET:+yes}}"; }} > {record}
"""


@pytest.fixture
def clone(tmp_path):
    """A git repository with the Makefile, scripts/warm_python.py and a committed dvc.lock."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "Makefile", repo)
    shutil.copy(REPO / "scripts" / "warm_python.py", repo / "scripts")
    (repo / "dvc.lock").write_text("committed\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "start"], cwd=repo, check=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dvc").write_text(FAKE_DVC.format(record=tmp_path / "record"))
    (bin_dir / "dvc").chmod(stat.S_IRWXU)
    return repo


def quick_look(repo):
    """Run `make quick-look` with the fake dvc: what it recorded (args, dvc.lock, warm)."""
    env = dict(os.environ, PATH=f"{repo.parent / 'bin'}{os.pathsep}{os.environ['PATH']}")
    subprocess.run(
        ["make", "--no-print-directory", "quick-look", f"PYTHON={sys.executable}"],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return dict(line.split(" ", 1) for line in (repo.parent / "record").read_text().splitlines())


def test_quick_look_runs_the_digits_experiment_from_an_empty_lock_when_git_holds_the_lock(clone):
    record = quick_look(clone)
    assert record["args"].startswith("exp run --name quick-look-digits-")
    assert "-S data.dataset=digits -S train.max_epochs=4" in record["args"]
    assert record["lock"] == "absent"
    if sys.platform == "linux":
        assert record["warm"] == "yes"  # stages' python -m calls go to scripts/warm_python.py


def test_quick_look_keeps_a_dvc_lock_with_uncommitted_changes(clone):
    (clone / "dvc.lock").write_text("changed, not committed\n")
    assert quick_look(clone)["lock"] == "changed, not committed"
    assert (clone / "dvc.lock").read_text() == "changed, not committed\n"
