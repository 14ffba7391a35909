"""Makefile `quick-look`: the parameters it sets, the DVC commands it runs and the dvc.lock they
start from (a fake `dvc` first on PATH records each call; nothing trains)."""

import os
import re
import shutil
import stat
import subprocess
import sys

import pytest
import yaml

from tests.helpers import REPO

FAKE_DVC = """#!/bin/sh
echo "$*|$(cat dvc.lock 2>/dev/null || echo absent)|${{CNNLAB_WARM_PYTHON_SOCKET:+warm}}" >> {record}
"""


@pytest.fixture
def clone(tmp_path):
    """A git repository with the Makefile, params.yaml, scripts/warm_python.py and a committed dvc.lock."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "Makefile", repo)
    shutil.copy(REPO / "params.yaml", repo)
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
    """Run `make quick-look` with the fake dvc: its calls, each as (arguments, dvc.lock, warm)."""
    env = dict(os.environ, PATH=f"{repo.parent / 'bin'}{os.pathsep}{os.environ['PATH']}")
    subprocess.run(
        ["make", "--no-print-directory", "quick-look", f"PYTHON={sys.executable}"],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return [tuple(line.split("|")) for line in (repo.parent / "record").read_text().splitlines()]


def test_quick_look_sets_the_digits_parameters_and_keeps_the_rest(clone):
    before = yaml.safe_load((clone / "params.yaml").read_text())
    quick_look(clone)
    after = yaml.safe_load((clone / "params.yaml").read_text())
    assert after["data"]["dataset"] == "digits"
    assert (after["train"]["max_epochs"], after["train"]["max_batch_size"]) == (4, 64)
    assert after["repeats"]["max_runs"] == 1
    assert after["variants"] == before["variants"]


def test_quick_look_reproduces_warm_from_an_empty_lock_then_saves_the_experiment(clone):
    (repro, save) = quick_look(clone)
    assert repro == ("repro", "absent", "warm" if sys.platform == "linux" else "")
    assert save[0].startswith("exp save --name quick-look-digits-")


def test_quick_look_keeps_a_dvc_lock_with_uncommitted_changes(clone):
    (clone / "dvc.lock").write_text("changed, not committed\n")
    assert quick_look(clone)[0][1] == "changed, not committed"
    assert (clone / "dvc.lock").read_text() == "changed, not committed\n"


def test_quick_look_keeps_a_dvc_lock_git_does_not_hold(clone):
    subprocess.run(["git", "rm", "-q", "--cached", "dvc.lock"], cwd=clone, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "untrack"], cwd=clone)
    assert quick_look(clone)[0][1] == "committed"
    assert (clone / "dvc.lock").read_text() == "committed\n"


def test_the_readme_shows_the_quick_looks_settings():
    """README "The first look, offline" gives the quick look as one `dvc exp run`: same settings."""
    makefile = (REPO / "Makefile").read_text()
    settings = re.search(r"^QUICK_LOOK = (.*)$", makefile, re.MULTILINE).group(1).split()
    readme = (REPO / "README.md").read_text()
    command = re.search(r"dvc exp run --name quick-look-digits-<time> (.*?)\n```", readme, re.DOTALL).group(1)
    assert re.findall(r"-S (\S+)", command) == settings
