"""The prepare stage as DVC runs it: from a project folder holding params.yaml."""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from cnnlab.data.download import cached_path
from cnnlab.data.idx import FILES, MNIST
from cnnlab.layout import DOWNLOAD_DIR
from data_helpers import REPO
from stages import prepare as stage


def write_params(project, data):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"] = data
    (project / "params.yaml").write_text(yaml.safe_dump(params))


def test_python_m_stages_prepare_on_digits(tmp_path):
    write_params(tmp_path, {"dataset": "digits", "image_size": None})
    result = subprocess.run(
        [sys.executable, "-m", "stages.prepare"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )
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
    assert capsys.readouterr().err == (
        "error: data.source: no/such/folder does not exist; give an existing file, folder or http(s) URL\n"
    )
    assert not (tmp_path / "data" / "prepared").exists()


def check(tmp_path, monkeypatch, capsys, data):
    write_params(tmp_path, data)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        stage.main(["--check"])
        raise SystemExit(0)
    return exit_info.value.code, capsys.readouterr().out


def offline(monkeypatch):
    import requests

    def no_network(url, **kwargs):
        raise requests.ConnectionError(
            f"HTTPSConnectionPool: Max retries exceeded with url: {url} "
            "(Caused by NameResolutionError: [Errno -2] Name or service not known)"
        )

    monkeypatch.setattr(requests, "head", no_network)
    monkeypatch.setenv("KERAS_HOME", "/nonexistent-keras-home")


def test_check_names_the_unreachable_download_and_exits_3(tmp_path, monkeypatch, capsys):
    offline(monkeypatch)
    code, out = check(tmp_path, monkeypatch, capsys, {"dataset": "cifar10"})

    assert code == stage.UNREACHABLE == 3
    assert out == (
        "cifar10: cannot reach https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (Name or service "
        "not known); no local copy (data.source, the Keras cache or data/downloads/) either\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_check_passes_offline_for_bundled_and_local_data(tmp_path, monkeypatch, capsys):
    offline(monkeypatch)
    assert check(tmp_path, monkeypatch, capsys, {"dataset": "digits"}) == (0, "")
    (tmp_path / "pictures").mkdir()
    assert check(tmp_path, monkeypatch, capsys, {"dataset": "folder", "source": "pictures"}) == (0, "")
    for name in FILES:
        cached = cached_path(f"{MNIST.base_url}{name}.gz", tmp_path / DOWNLOAD_DIR)
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(name.encode())
    code, out = check(tmp_path, monkeypatch, capsys, {"dataset": "mnist"})
    assert code == 3 and "no local copy" in out, "copies that do not match their published md5 do not count"
    for name in FILES:  # now they are the files the md5s describe
        monkeypatch.setitem(MNIST.gz_md5, name, hashlib.md5(name.encode()).hexdigest())
    assert check(tmp_path, monkeypatch, capsys, {"dataset": "mnist"}) == (0, "")
