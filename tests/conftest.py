"""Fixtures shared by all tests: the real datasets in ../shared/datasets (never downloaded)."""

import os
import sys
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


@pytest.fixture(autouse=True)
def float32_policy_after_each_test():
    """Training in the test process sets Keras's global precision policy (bfloat16 on CPUs with
    native bfloat16); models built by the next test must not inherit it."""
    yield
    if "keras" in sys.modules:
        sys.modules["keras"].mixed_precision.set_global_policy("float32")
