"""Fixtures shared by all tests: the real datasets in ../shared/datasets (never downloaded)."""

import os
from pathlib import Path

import pytest

from tests.helpers import REPO


@pytest.fixture(scope="session")
def shared_datasets():
    folder = Path(os.environ.get("CNNLAB_SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
    if not folder.is_dir():
        pytest.skip(f"shared datasets not found at {folder} (set CNNLAB_SHARED_DATASETS)")
    return folder


@pytest.fixture(scope="session")
def cifar_jpg_archive(shared_datasets):
    path = shared_datasets / "cifar10-jpg.tar.gz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path
