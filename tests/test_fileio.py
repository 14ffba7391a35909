"""Outputs appear whole or not at all: atomic renames, and a full disk is one clear line."""

import re
import subprocess
from contextlib import contextmanager

import pytest

from cnnlab.errors import UserError
from cnnlab.fileio import atomic_path, write_json
from tests.helpers import run_stage, small_variant, write_params, write_prepared


def test_failed_write_leaves_previous_output_and_no_temporary(tmp_path):
    target = tmp_path / "out"
    write_json(target / "a.json", {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "half.json").write_text("{")
            raise RuntimeError("crash mid-write")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert [p.name for p in target.iterdir()] == ["a.json"]


@contextmanager
def tiny_disk(path, size):
    """A real filesystem of `size` mounted at `path` (needs root; skips otherwise)."""
    path.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_disk_full_while_writing_json_is_one_line(tmp_path):
    with tiny_disk(tmp_path / "disk", "4k") as disk:
        with pytest.raises(UserError, match=r"disk full while writing it; free some space and rerun"):
            write_json(disk / "big.json", {"x": "y" * 100_000})
        assert list(disk.iterdir()) == []


def test_disk_full_while_saving_a_model(tmp_path):
    project = tmp_path / "project"
    write_prepared(project / "data" / "prepared")
    write_params(project, {"small": small_variant(epochs=1)})
    with tiny_disk(project / "models", "64k") as models:
        result = run_stage(project, "stages.train", "small", check=False)
        assert result.returncode == 2, result.stderr[-2000:]
        assert result.stderr.strip().splitlines()[-1] == (
            "error: models/small: disk full while writing it; free some space and rerun (nothing was written there)"
        )
        assert list(models.iterdir()) == []


def test_disk_full_while_checkpointing_an_epoch(tmp_path):
    project = tmp_path / "project"
    write_prepared(project / "data" / "prepared")
    write_params(project, {"small": small_variant(epochs=1)})
    with tiny_disk(project / "data" / "checkpoints", "64k") as checkpoints:
        result = run_stage(project, "stages.train", "small", check=False)
        assert result.returncode == 2, result.stderr[-2000:]
        last = result.stderr.strip().splitlines()[-1]
        assert re.fullmatch(
            r"error: data/checkpoints/small/\w+: disk full while checkpointing epoch 1; free some "
            r"space and rerun \(training resumes from the last complete checkpoint\)",
            last,
        ), last
        assert [path.name for path in checkpoints.glob("small/*/*")] == ["history.csv"], "no half-written weights"


def test_disk_full_while_preparing_data(tmp_path):
    project = tmp_path / "project"
    write_params(project.mkdir() or project, {"small": small_variant()}, data={"dataset": "digits"})
    with tiny_disk(project / "data", "256k") as data:
        result = run_stage(project, "stages.prepare", check=False)
        assert result.returncode == 2, result.stderr[-2000:]
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("error: data/prepared") and "disk full" in last
        assert not (data / "prepared").exists()
        assert not [p for p in data.rglob("*") if p.is_file() and "prepared" in p.name]
