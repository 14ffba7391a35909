"""requirements.txt and pyproject.toml install everywhere the README says: every environment marker
evaluates, on each platform, to what it means (pip stops on a marker it cannot evaluate)."""

import re
import tomllib

import pytest
from packaging.requirements import Requirement

from tests.helpers import REPO

PLATFORMS = {
    # a Linux kernel release that is no PEP 440 version, as on this CI machine
    "linux": {"sys_platform": "linux", "platform_release": "6.18.44-fc-v1252"},
    "macos12": {"sys_platform": "darwin", "platform_release": "21.6.0"},
    "macos13": {"sys_platform": "darwin", "platform_release": "22.6.0"},
    "macos14": {"sys_platform": "darwin", "platform_release": "23.1.0"},
    "macos15": {"sys_platform": "darwin", "platform_release": "24.0.0"},
    "windows": {"sys_platform": "win32", "platform_release": "10"},
}
ONNX_PINS = {"tf2onnx", "onnx", "onnxruntime"}


def requirements():
    lines = (REPO / "requirements.txt").read_text().splitlines()
    pins = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = [spec for specs in project.get("optional-dependencies", {}).values() for spec in specs]
    return pins + [Requirement(spec) for spec in project["dependencies"] + extras]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_marker_evaluates_on_every_platform(platform):
    for requirement in requirements():
        if requirement.marker is not None:
            requirement.marker.evaluate(PLATFORMS[platform])  # raises where pip would stop


def test_onnx_pins_are_left_out_only_on_macos_12_and_13():
    onnx = [requirement for requirement in requirements() if requirement.name in ONNX_PINS]
    assert {requirement.name for requirement in onnx} == ONNX_PINS
    for requirement in onnx:
        installed = {name: requirement.marker.evaluate(env) for name, env in PLATFORMS.items()}
        assert installed == {name: not re.fullmatch(r"macos1[23]", name) for name in PLATFORMS}, requirement


def test_platform_release_is_never_compared_as_a_version():
    # pip 24 (Python 3.13's ensurepip) raises InvalidVersion for `platform_release >= "23"` on a
    # kernel like 6.18.44-fc-v1252, and stops the install; newer `packaging` falls back to strings
    for requirement in requirements():
        assert not re.search(r"platform_release\s*[<>=!~]", str(requirement.marker or "")), requirement


def test_dvc_reads_yaml_with_the_c_parser():
    # ruamel.yaml 0.19 makes its C parser optional: without it every `dvc status`, `dvc repro`
    # stage and `dvc exp show` parses the multi-thousand-line dvc.lock in pure Python
    from ruamel.yaml import YAML

    assert YAML(typ="safe").Parser.__name__ == "CParser"
