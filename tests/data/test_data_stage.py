"""The prepare stage as DVC runs it: from a project folder holding params.yaml."""
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from data_helpers import REPO
from stages import prepare as stage


def write_params(project, data):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"] = data
    (project / "params.yaml").write_text(yaml.safe_dump(params))


def test_python_m_stages_prepare_on_digits(tmp_path):
    write_params(tmp_path, {"dataset": "digits", "image_size": None})
    result = subprocess.run([sys.executable, "-m", "stages.prepare"], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("prepared digits: 1,293 train, 144 val, 360 test images of 8x8x1, 10 classes, in ")
    assert result.stdout.endswith(" s -> data/prepared\n") and result.stdout.count("\n") == 1
    prepared = tmp_path / "data" / "prepared"
    assert sorted(p.name for p in prepared.iterdir()) == ["card.json", "test.npz", "train.npz", "val.npz"]
    with np.load(prepared / "train.npz") as train:
        assert train["x"].shape == (1293, 8, 8, 1)


def test_a_user_error_is_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys):
    write_params(tmp_path, {"dataset": "folder", "source": "no/such/folder"})
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        stage.main([])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == ("error: data.source: no/such/folder does not exist; "
                                       "give an existing file, folder or http(s) URL\n")
    assert not (tmp_path / "data" / "prepared").exists()
