"""Bad state and bad settings a user runs into (README "Faults and scale"): each case is built
here, and its stage must end with one `error:` line and exit status 2, or carry on with one
`warning:` line, without losing or recording as valid anything it should not."""

import json

import numpy as np
import pytest
import yaml

import stages.evaluate
import stages.prepare
import stages.train
from tests.helpers import REPO, small_variant, write_params, write_prepared


def run_main(stage, argv, capsys):
    """(exit status, stderr) of a stage's main() run in this process."""
    with pytest.raises(SystemExit) as exit_info:
        stage.main(argv)
        raise SystemExit(0)
    return exit_info.value.code, capsys.readouterr().err


def one_error_line(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def test_a_top_level_key_written_twice_is_refused(tmp_path, monkeypatch, capsys):
    shipped = (REPO / "params.yaml").read_text(encoding="utf-8")
    (tmp_path / "params.yaml").write_text(shipped + "train:\n  max_epochs: 2\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    status, stderr = run_main(stages.prepare, [], capsys)
    first = 1 + next(number for number, line in enumerate(shipped.splitlines()) if line.startswith("train:"))
    assert status == 2
    assert one_error_line(stderr) == (
        f"error: params.yaml line {len(shipped.splitlines()) + 1}: key 'train' written twice (first at line "
        f"{first}); keep one of them (DVC rejects this file too)"
    )
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_a_non_finite_number_in_params_is_refused_before_training(tmp_path, monkeypatch, capsys, value):
    write_prepared(tmp_path / "data" / "prepared")
    write_params(tmp_path, {"small": small_variant()})
    text = (tmp_path / "params.yaml").read_text().replace("learning_rate: 0.003", f"learning_rate: {value}")
    (tmp_path / "params.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    status, stderr = run_main(stages.train, ["small"], capsys)
    shown = {".nan": "nan", ".inf": "inf", "-.inf": "-inf"}[value]
    assert status == 2
    assert one_error_line(stderr) == (
        f"error: variants.small.optimizer.learning_rate: must be a finite number, got {shown}"
    )
    assert not (tmp_path / "models").exists() and not (tmp_path / "data" / "checkpoints").exists()


@pytest.mark.parametrize(
    "sizes, message",
    [
        ({"circle": 10, "square": 10, "star": 1}, "class has too few images: 'star' (1)"),
        ({"circle": 10, "square": 2, "star": 1}, "classes have too few images: 'square' (2), 'star' (1)"),
    ],
)
def test_a_folder_class_too_small_to_split_is_named(tmp_path, monkeypatch, capsys, sizes, message):
    from tests.data.data_helpers import write_class_folders

    source = write_class_folders(tmp_path / "shapes", sizes)
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump({"data": {"dataset": "folder", "source": str(source)}, "variants": {"small": small_variant()}})
    )
    monkeypatch.chdir(tmp_path)
    status, stderr = run_main(stages.prepare, [], capsys)
    assert status == 2
    assert one_error_line(stderr) == (
        f"error: {source}: {message}; splitting off data.test_fraction and data.val_fraction needs at least "
        "3 images per class: add images or remove the class folder"
    )
    assert not (tmp_path / "data" / "prepared").exists()


@pytest.mark.parametrize("damage", ["truncated", "zeroed"])
def test_a_damaged_model_file_is_named_as_damaged_not_missing(tmp_path, monkeypatch, capsys, damage):
    from tests.model_fixtures import identity_model, write_variant
    from tests.model_fixtures import write_prepared as write_test_split

    card = write_test_split(tmp_path, np.zeros((3, 1, 3, 1)), np.arange(3), ["a", "b", "c"])
    model_file = write_variant(tmp_path, "small", identity_model(3), card) / "model.keras"
    whole = model_file.read_bytes()
    model_file.write_bytes(whole[: len(whole) // 2] if damage == "truncated" else bytes(len(whole)))
    write_params(tmp_path, {"small": small_variant()})
    monkeypatch.chdir(tmp_path)
    status, stderr = run_main(stages.evaluate, ["small"], capsys)
    assert status == 2
    assert one_error_line(stderr) == (
        "error: models/small/model.keras: damaged or cut short (not a complete .keras zip archive); "
        "rerun `dvc repro train@small` to rebuild it"
    )
    assert not (tmp_path / "metrics").exists()
    assert json.loads((tmp_path / "models/small/card.json").read_text()) == card
