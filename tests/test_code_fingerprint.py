"""cnnlab.code_fingerprint: checkpoints and kept seeds are keyed by the code a training run executes."""

import shutil

from cnnlab import code_fingerprint
from tests.helpers import REPO


def project_copy(tmp_path):
    shutil.copytree(REPO / "cnnlab", tmp_path / "cnnlab", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def fingerprint(root):
    return code_fingerprint.training_code_fingerprint.__wrapped__(root)


def test_an_edit_to_code_training_runs_changes_the_fingerprint(tmp_path):
    root = project_copy(tmp_path)
    before = fingerprint(root)
    augmentations = root / "cnnlab" / "models" / "__init__.py"
    augmentations.write_text(augmentations.read_text() + "\n# a changed augmentation\n")

    assert fingerprint(root) != before


def test_an_edit_to_code_training_never_runs_keeps_it(tmp_path):
    root = project_copy(tmp_path)
    before = fingerprint(root)
    report = root / "cnnlab" / "report.py"
    report.write_text(report.read_text() + "\n# a changed report\n")

    assert fingerprint(root) == before


def test_the_training_closure_holds_what_shapes_a_run_and_nothing_downstream():
    files = code_fingerprint.import_closure(code_fingerprint.TRAINING_MODULE)

    for shaping in ("cnnlab/training.py", "cnnlab/models/__init__.py", "cnnlab/lookahead.py", "cnnlab/optimizers.py"):
        assert shaping in files
    for downstream in ("cnnlab/report.py", "cnnlab/evaluation.py", "cnnlab/export.py", "cnnlab/statistics.py"):
        assert downstream not in files
