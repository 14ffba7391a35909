"""dvc.yaml's `deps:` are exactly the project files each stage imports, so DVC's cache can be trusted:
an edit to a file a stage runs reruns it, and an edit to any other file does not."""

import re
import subprocess
import sys

import pytest
import yaml

from cnnlab import code_fingerprint
from tests.helpers import REPO

KERAS_FREE_STAGES = ("prepare", "compare", "report")


def import_closure(module):
    return set(code_fingerprint.import_closure(module, REPO))


def listed_source_files(deps):
    """The project's Python files among a stage's deps; a folder stands for the .py files in it."""
    files = set()
    for dep in deps:
        path = REPO / dep
        if dep.split("/")[0] not in code_fingerprint.PACKAGES:
            continue
        found = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        files.update(p.relative_to(REPO).as_posix() for p in found)
    return files


def stages():
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in spec.items():
        stage = stage.get("do", stage)
        module = re.match(r"python -m (\S+)", stage["cmd"]).group(1)
        yield name, module, stage.get("deps", [])


@pytest.mark.parametrize("name, module, deps", list(stages()), ids=[name for name, *_ in stages()])
def test_deps_list_exactly_the_files_the_stage_imports(name, module, deps):
    closure, listed = import_closure(module), listed_source_files(deps)

    missing = sorted(closure - listed)
    extra = sorted(listed - closure)
    assert not missing, f"dvc.yaml stage {name}: imports {missing} but does not list them in deps"
    assert not extra, f"dvc.yaml stage {name}: lists {extra} in deps but never imports them"


def test_closure_follows_imports_inside_functions():
    # stages.train imports cnnlab.training only inside main(), after validating params
    assert "cnnlab/training.py" in import_closure("stages.train")
    assert "cnnlab/data/preparation.py" in import_closure("stages.prepare")


@pytest.mark.parametrize("stage", KERAS_FREE_STAGES)
def test_stages_that_only_read_params_and_files_import_no_tensorflow(stage):
    code = (
        f"import sys, stages.{stage}; from cnnlab.config import load_params; load_params(); "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)

    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "stage",
    ["prepare", "train", "evaluate", "repeat", "export", "compare", "report", "predict", "significance", "pr_summary"],
)
def test_every_stage_answers_help_without_side_effects(stage, tmp_path):
    (tmp_path / "params.yaml").write_text("this is not: [valid yaml\n")
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", f"stages.{stage}", "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_every_variant_is_a_model_artifact_of_its_models_folder():
    artifacts = yaml.safe_load((REPO / "dvc.yaml").read_text())["artifacts"]
    variants = yaml.safe_load((REPO / "params.yaml").read_text())["variants"]

    assert list(artifacts) == list(variants), "dvc.yaml artifacts: one entry per variant of params.yaml, same order"
    assert all(artifacts[name] == {"path": f"models/{name}", "type": "model"} for name in variants)
