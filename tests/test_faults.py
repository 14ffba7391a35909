"""Bad state and bad settings a user runs into (README "Faults and scale"): each case is built
here, and its stage must end with one `error:` line and exit status 2, or carry on with one
`warning:` line, without losing or recording as valid anything it should not."""

import json
import re
import shutil

import numpy as np
import pytest
import yaml

import stages.compare
import stages.evaluate
import stages.prepare
import stages.report
import stages.train
from cnnlab.data.prepared import dataset_id
from cnnlab.resume import resumed_epoch
from tests.helpers import (
    REPO,
    checkpointed_epochs,
    kill_once_checkpointed,
    run_stage,
    small_variant,
    start_training,
    write_params,
    write_prepared,
)
from tests.test_report import CARD, LAYERS, TRAINING, build_project, write_png


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


def test_training_that_diverges_fails_at_the_first_non_finite_loss_and_saves_no_model(tmp_path):
    write_prepared(tmp_path / "data" / "prepared")
    write_params(tmp_path, {"small": small_variant(epochs=3, optimizer={"name": "adam", "learning_rate": 1e12})})
    result = run_stage(tmp_path, "stages.train", "small", check=False)
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert re.fullmatch(
        r"error: variants\.small: training diverged \(loss nan\) in epoch 1, batch \d+; the learning rate "
        r"\(variants\.small\.optimizer\.learning_rate: 1e\+12\) is the likely cause: lower it\. No model was saved",
        line,
    ), line
    assert "Epoch 2/3" not in result.stdout
    assert not (tmp_path / "models").exists()
    assert checkpointed_epochs(tmp_path) == 0, "the diverged epoch is not checkpointed"


def test_the_divergence_check_also_runs_at_the_end_of_an_epoch():
    """The multi-worker loop calls no batch hooks: the epoch's logs are checked too."""
    from cnnlab.training import StopOnNonFiniteLoss, TrainingDiverged

    guard = StopOnNonFiniteLoss("small", 0.5, 0.5)
    guard.on_epoch_end(0, {"loss": 1.5})
    with pytest.raises(TrainingDiverged, match=r"^variants\.small: training diverged \(loss inf\) in epoch 4; "):
        guard.on_epoch_end(3, {"loss": float("inf")})


def test_a_divergence_names_the_learning_rate_in_params_yaml_and_the_one_trained_with():
    from cnnlab.training import StopOnNonFiniteLoss, TrainingDiverged

    guard = StopOnNonFiniteLoss("small", 0.75, 0.09375)  # batch 512 capped to 64
    with pytest.raises(TrainingDiverged) as diverged:
        guard.on_train_batch_end(0, {"loss": float("nan")})
    assert (
        "the learning rate (variants.small.optimizer.learning_rate: 0.75, 0.09375 as scaled for "
        "train.max_batch_size and replicas) is the likely cause: lower it." in str(diverged.value)
    )


@pytest.mark.parametrize("damage", ["weights cut short", "checkpoint.json cut short"])
def test_a_damaged_checkpoint_is_set_aside_and_the_run_completes(tmp_path, damage):
    write_prepared(tmp_path / "data" / "prepared")
    write_params(tmp_path, {"small": small_variant(epochs=5)})
    kill_once_checkpointed([start_training(tmp_path)], tmp_path, epochs=2)
    (folder,) = (tmp_path / "data/checkpoints/small").iterdir()
    epoch = resumed_epoch(folder)
    damaged = folder / (f"epoch-{epoch:04d}.keras" if damage == "weights cut short" else "checkpoint.json")
    damaged.write_bytes(damaged.read_bytes()[:100])
    found = {path.name: path.read_bytes() for path in folder.iterdir()}

    result = run_stage(tmp_path, "stages.train", "small")

    where = folder.relative_to(tmp_path)
    if damage == "weights cut short":
        problem, outcome = f"{damaged.name} does not match its checksum", f"resuming after epoch {epoch - 1} instead"
        assert f"resuming small from its checkpoint after epoch {epoch - 1}" in result.stdout
    else:
        problem, outcome = "checkpoint.json is unreadable", "starting afresh"
        assert "resuming" not in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith(("warning", "error"))]
    assert warnings == [f"warning: {where}: {problem}; {outcome} (the damaged checkpoint is kept in {where}.damaged-1)"]
    aside = folder.with_name(f"{folder.name}.damaged-1")
    assert {path.name: path.read_bytes() for path in aside.iterdir()} == found
    assert json.loads((tmp_path / "models/small/training.json").read_text())["epochs_run"] == 5
    assert not folder.exists(), "the run's own checkpoint is removed when it completes"


def report_project(root, metrics_datasets, card_name="digits"):
    """A project whose data/prepared/ holds `card_name`'s card, with metrics/<variant>.json
    computed on the data `metrics_datasets` names ({variant: card name, or None for a metrics
    file from before the `dataset` key}), and the report a previous run committed."""
    card = {**CARD, "name": card_name}
    variants = {name: {"layers": LAYERS} for name in metrics_datasets}
    metrics = {
        name: {"test_accuracy": 0.5 + index / 10, "dataset": dataset_id({**CARD, "name": dataset}) if dataset else None}
        for index, (name, dataset) in enumerate(metrics_datasets.items())
    }
    build_project(root, variants, metrics, dict.fromkeys(variants, TRAINING["small"]), card)
    for name, data in metrics.items():
        if data["dataset"] is None:
            del data["dataset"]
        (root / "metrics" / f"{name}.json").write_text(json.dumps(data))
        write_png(root / "report" / name / "curves.png", (4, 3), 50)
    return root


def test_compare_refuses_metrics_of_different_datasets(tmp_path, monkeypatch, capsys):
    root = report_project(tmp_path, {"fast": "digits", "resnet": "cifar10", "alexnet": "cifar10"})
    monkeypatch.chdir(root)
    status, stderr = run_main(stages.compare, [], capsys)
    assert status == 2
    cifar = dataset_id({**CARD, "name": "cifar10"})
    assert one_error_line(stderr) == (
        f"error: metrics/ mixes datasets: fast on {dataset_id({**CARD, 'name': 'digits'})}, but the other 2 "
        f"evaluated variants on {cifar}; rerun `dvc repro` to evaluate every variant on the same prepared data"
    )
    assert not (root / "plots" / "comparison.csv").exists()


def test_the_report_refuses_metrics_of_other_data_and_deletes_nothing(tmp_path, monkeypatch, capsys):
    """The issue's case: a digits run with one variant evaluated, the other metrics committed
    from the CIFAR-10 run (before metrics named their data)."""
    root = report_project(tmp_path, {"fast": "digits", "resnet": None, "alexnet": None})
    committed = {path: path.read_bytes() for path in (root / "report").rglob("*") if path.is_file()}
    monkeypatch.chdir(root)
    status, stderr = run_main(stages.report, [], capsys)
    assert status == 2
    assert one_error_line(stderr) == (
        "error: metrics/ mixes datasets: alexnet, resnet on data not recorded (metrics written before they "
        "named their dataset), but data/prepared/card.json (the report's data) is "
        f"{dataset_id({**CARD, 'name': 'digits'})}; rerun `dvc repro` to evaluate every variant on the same "
        "prepared data"
    )
    assert {path: path.read_bytes() for path in (root / "report").rglob("*") if path.is_file()} == committed


def test_the_report_keeps_the_committed_pictures_it_has_no_local_plots_for(tmp_path, monkeypatch, capsys):
    root = report_project(tmp_path, {"fast": "digits", "resnet": "digits"})
    shutil.rmtree(root / "plots" / "resnet")  # DVC-cached, not pulled: only the committed report has them
    monkeypatch.chdir(root)
    assert run_main(stages.report, [], capsys)[0] == 0
    assert sorted(path.name for path in (root / "report" / "resnet").iterdir()) == ["curves.png"]
    markdown = (root / "report" / "README.md").read_text()
    assert "training curves (kept from the previous report: no plots/resnet/ here) of resnet" in markdown
    assert sorted(path.name for path in (root / "report" / "fast").iterdir()) == ["confusion.png", "curves.png"]


def prepare_error(directory, params, monkeypatch, capsys):
    """The one error line of the prepare stage (which validates all of params.yaml) on `params`."""
    (directory / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(directory)
    status, stderr = run_main(stages.prepare, [], capsys)
    assert status == 2
    return one_error_line(stderr)


def test_the_multi_worker_recipe_validates_on_the_default_params(tmp_path, monkeypatch, capsys):
    """README: `distribute: multi_worker` under one variant; `fast` (lookahead) is not checked."""
    from cnnlab.config import validate_params

    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["variants"]["seed001_exp1"]["distribute"] = "multi_worker"
    loaded = validate_params(params)
    assert loaded["variants"]["seed001_exp1"]["distribute"] == "multi_worker"
    assert {variant["distribute"] for name, variant in loaded["variants"].items() if name != "seed001_exp1"} == {"none"}

    params["variants"]["fast"]["distribute"] = "multi_worker"
    assert prepare_error(tmp_path, params, monkeypatch, capsys) == (
        "error: variants.fast.lookahead: not supported with variants.fast.distribute: multi_worker (it averages "
        "between steps); remove it or use distribute: mirrored"
    )


def test_the_old_global_distribute_setting_says_where_it_moved(tmp_path, monkeypatch, capsys):
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["train"]["distribute"] = "multi_worker"
    assert prepare_error(tmp_path, params, monkeypatch, capsys) == (
        "error: train.distribute: now set per variant, as variants.<name>.distribute, so that it retrains only "
        "the variants it applies to (e.g. -S variants.seed001_exp1.distribute=...); move it there"
    )
