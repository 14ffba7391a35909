"""export@<variant> (cnnlab.export, cnnlab.runtimes): exported files, scored and timed by their own
runtimes, in the comparison and the report; `predict --model` runs them."""

import json
import shutil

import keras
import numpy as np
import pytest
import yaml

from cnnlab import export as export_module
from cnnlab import models, runtimes
from cnnlab.comparison import export_facts, variant_rows
from cnnlab.config import validate_variant
from cnnlab.data.prepared import dataset_id
from cnnlab.evaluation import load_test_split, load_variant_model
from cnnlab.export import ExportFailed, check_onnx_ops, export_variant, exportable_model
from cnnlab.predict import main as predict
from cnnlab.report import export_cells
from tests.helpers import run_stage, small_variant
from tests.model_fixtures import VARIANT, trained_project, write_variant

SETTINGS = {"formats": ["tflite", "tflite_dynamic", "onnx"], "latency_calls": 50, "warmup_calls": 2, "threads": 1}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("export") / "project"
    shutil.copytree(trained_project(tmp_path_factory), root)
    return root


@pytest.fixture(scope="module")
def exported(project):
    lines = []
    figures = export_variant(VARIANT, SETTINGS, project, report=lines.append)
    return figures, lines


def test_every_format_is_written_and_scored_by_its_own_runtime(project, exported):
    figures, lines = exported
    directory = project / "exports" / VARIANT

    assert sorted(p.name for p in directory.iterdir()) == [
        "card.json",
        "model.onnx",
        "model.tflite",
        "model_dynamic.tflite",
    ]
    assert json.loads((project / "metrics" / "export" / f"{VARIANT}.json").read_text()) == json.loads(
        json.dumps(figures)
    )
    for name, runtime in (("tflite", "ai-edge-litert"), ("tflite_dynamic", "ai-edge-litert"), ("onnx", "onnxruntime")):
        row = figures[name]
        assert row["runtime"].startswith(runtime)
        assert row["size_bytes"] == (directory / row["file"].split("/")[-1]).stat().st_size > 0
        assert 0 < row["latency_ms"] < 1000
    for name in ("tflite", "onnx"):  # float exports score as the Keras model does, within 0.1 points
        assert abs(figures[name]["test_accuracy"] - figures["keras"]["test_accuracy"]) <= 0.001
    assert figures["test_images"] == 60 and figures["latency_calls"] == 50
    assert len(lines) == 4 and not any(line.startswith("warning") for line in lines)
    _, _, card = load_test_split(project)
    metrics = json.loads((project / "metrics" / f"{VARIANT}.json").read_text())
    assert figures["dataset"] == dataset_id(card) == metrics["dataset"]
    assert figures["keras"]["dtype_policy"] == "float32" and figures["keras_float32"] == {
        "dtype_policy": "float32",
        "test_accuracy": figures["keras"]["test_accuracy"],
    }


def test_float_exports_give_the_keras_outputs(project, exported):
    images, _, _ = load_test_split(project)
    expected = load_variant_model(project, VARIANT).predict_on_batch(images.astype(np.float32))
    for name in ("model.tflite", "model.onnx"):
        model = runtimes.load_exported(project / "exports" / VARIANT / name)
        np.testing.assert_allclose(runtimes.predict(model, images), expected, atol=1e-5)


def test_comparison_and_report_show_each_format(project, exported):
    figures, _ = exported
    layers = {"layers": [{"type": "flatten"}, {"type": "dense", "units": "classes", "activation": "softmax"}]}
    (row,) = variant_rows({VARIANT: validate_variant(layers, "variants.v")}, project)

    assert row["tflite_size_kb"] == figures["tflite"]["size_bytes"] / 1000
    assert row["onnx_test_accuracy"] == figures["onnx"]["test_accuracy"]
    assert row["tflite_dynamic_latency_ms"] == figures["tflite_dynamic"]["latency_ms"]
    (cells,), notes = export_cells([row])
    assert cells[0] == VARIANT and len(cells) == 3 + 3 * 3 and notes == []
    assert cells[5].endswith("(+0.00 pt)")  # LiteRT float: the Keras model's accuracy

    unexported = {"variant": "fresh", "evaluated": True, "test_accuracy": 0.5}
    pending = {"variant": "pending", "evaluated": False}
    (_,), notes = export_cells([row, unexported, pending])
    assert notes == ["Not exported yet (run dvc repro export@VARIANT): fresh"]


@pytest.mark.parametrize("name", ["model.tflite", "model_dynamic.tflite", "model.onnx"])
def test_predict_classifies_with_an_exported_file(project, exported, name, capsys, tmp_path):
    from PIL import Image

    images, _, _ = load_test_split(project)
    Image.fromarray(images[3]).save(tmp_path / "three.png")
    keras_top = load_variant_model(project, VARIANT).predict_on_batch(images[3:4].astype(np.float32)).argmax()
    card = json.loads((project / "exports" / VARIANT / "card.json").read_text())

    assert predict(["--model", str(project / "exports" / VARIANT / name), "--json", str(tmp_path / "three.png")]) == 0

    (result,) = json.loads(capsys.readouterr().out)
    assert result["predictions"][0]["class"] == card["classes"][keras_top]


def test_exact_gelu_skips_onnx_with_one_line_and_the_other_formats_still_run(project):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="gelu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(6, activation="softmax")(x))
    write_variant(project, "exact_gelu", model, json.loads((project / "models" / VARIANT / "card.json").read_text()))
    lines = []

    figures = export_variant("exact_gelu", SETTINGS, project, report=lines.append)

    assert figures["onnx"] == {
        "skipped": "not exported: tf2onnx 1.17.0 cannot convert the TensorFlow op Erfc "
        "(exact GELU; `activation: gelu_tanh` converts)"
    }
    assert [line for line in lines if "ONNX" in line] == [f"exact_gelu: ONNX {figures['onnx']['skipped']}"]
    assert sorted(p.name for p in (project / "exports" / "exact_gelu").iterdir()) == [
        "card.json",
        "model.tflite",
        "model_dynamic.tflite",
    ]
    assert figures["tflite"]["test_accuracy"] == figures["keras"]["test_accuracy"]


def test_a_format_whose_runtime_is_not_installed_is_skipped_with_one_line(project, monkeypatch):
    monkeypatch.setattr(runtimes, "missing_runtime", lambda suffix: "ai-edge-litert" if suffix == ".tflite" else None)
    lines = []

    figures = export_variant(VARIANT, {**SETTINGS, "formats": ["tflite", "onnx"]}, project, report=lines.append)

    assert figures["tflite"] == {"skipped": "ai-edge-litert is not installed on this platform"}
    assert "test_accuracy" in figures["onnx"]
    assert f"{VARIANT}: LiteRT float ai-edge-litert is not installed on this platform" in lines


def test_mixed_precision_model_is_exported_in_float32():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        inputs = keras.Input((8, 8, 1))
        x = keras.layers.Conv2D(2, 3)(inputs)
        x = keras.layers.Flatten()(x)
        model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", dtype="float32")(x))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    images = np.random.default_rng(0).uniform(0, 255, (4, 8, 8, 1)).astype(np.float32)

    copy = exportable_model(model)

    assert {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    np.testing.assert_allclose(copy.predict_on_batch(images), model.predict_on_batch(images), atol=0.02)


def test_mixed_precision_exports_are_checked_against_the_float32_model_they_come_from(project):
    """Logits 10 + L/1000 (L: the trained model's): bfloat16 rounds them all to 10, float32 keeps
    the trained model's ranking. The float files must match the float32 figure, not the bfloat16 one."""
    trained = load_variant_model(project, VARIANT)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        body = keras.models.clone_model(
            trained,
            clone_function=lambda layer: layer.__class__.from_config(
                {**layer.get_config(), "dtype": "mixed_bfloat16"}
                | ({"activation": "linear"} if layer.name == "classes" else {})
            ),
        )
        body.set_weights(trained.get_weights())
        crowded = keras.layers.Rescaling(1 / 1000, offset=10)(body.outputs[0])
        model = keras.Model(body.inputs, keras.layers.Activation("softmax", dtype="float32")(crowded))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    card = json.loads((project / "models" / VARIANT / "card.json").read_text())
    write_variant(project, "mixed", model, card)
    lines = []

    figures = export_variant("mixed", {**SETTINGS, "formats": ["tflite", "onnx"]}, project, report=lines.append)

    as_trained, reference = figures["keras"]["test_accuracy"], figures["keras_float32"]["test_accuracy"]
    assert abs(as_trained - reference) > 0.05  # bfloat16 ties the crowded logits
    images, labels, _ = load_test_split(project)
    float32_accuracy = np.mean(trained.predict_on_batch(images.astype(np.float32)).argmax(axis=1) == labels)
    assert reference == pytest.approx(float32_accuracy)
    for name in ("tflite", "onnx"):
        assert abs(figures[name]["test_accuracy"] - reference) <= 0.001
    assert (
        figures["keras"]["dtype_policy"] == "mixed_bfloat16" and figures["keras_float32"]["dtype_policy"] == "float32"
    )
    assert not any(line.startswith("warning") for line in lines)
    assert f"mixed: Keras in float32, which the files are exported from: test accuracy {reference:.2%}" in lines
    row = {"variant": "mixed", "test_accuracy": as_trained, **export_facts(project, "mixed", figures["dataset"])}
    (cells,), notes = export_cells([row])
    assert cells[1] == f"{as_trained:.2%}" and cells[5] == f"{figures['tflite']['test_accuracy']:.2%} (+0.00 pt)"
    assert notes == [
        "mixed: trained in mixed_bfloat16; in float32, which the files are exported from and their differences "
        f"are against, the Keras model scores {reference:.2%}"
    ]


def test_a_model_with_augmentation_layers_exports_to_every_format_as_it_runs_at_inference(project):
    """flowers_v7's augmentation (rotation, shifts, zoom, flip) and BatchNorm, as the variant builds
    them: at inference the augmentation layers pass images through and BatchNorm uses its moving
    statistics, so each file gives the Keras model's outputs, with no trace of random transforms."""
    import onnx

    card = json.loads((project / "models" / VARIANT / "card.json").read_text())
    augmentation = {"rotation": 15, "width_shift": 0.1, "height_shift": 0.1, "zoom": 0.1, "horizontal_flip": True}
    layers = [{"type": "conv", "filters": 8}, {"type": "batchnorm"}, {"type": "maxpool"}, {"type": "flatten"}]
    layers += [{"type": "dense", "units": 16}, {"type": "batchnorm"}]
    layers += [{"type": "dense", "units": "classes", "activation": "softmax"}]
    variant = validate_variant(small_variant(layers=layers, augmentation=augmentation), "variants.augmented")
    _, model = models.build_model(variant, card, "variants.augmented", seed=3)
    assert {"RandomRotation", "RandomTranslation", "RandomZoom", "RandomFlip"} <= {
        layer.__class__.__name__ for layer in model.layers
    }
    for layer in model.layers:  # moving statistics far from a batch's own, as after training
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.full(layer.moving_mean.shape, 0.5, np.float32))
            layer.moving_variance.assign(np.full(layer.moving_variance.shape, 4.0, np.float32))
    write_variant(project, "augmented", model, card)
    lines = []

    figures = export_variant("augmented", SETTINGS, project, report=lines.append)

    directory = project / "exports" / "augmented"
    assert sorted(p.name for p in directory.iterdir()) == [
        "card.json",
        "model.onnx",
        "model.tflite",
        "model_dynamic.tflite",
    ]
    images, _, _ = load_test_split(project)
    expected = model.predict_on_batch(images.astype(np.float32))
    for name in ("model.tflite", "model.onnx"):
        outputs = runtimes.predict(runtimes.open_exported(directory / name), images)
        np.testing.assert_allclose(outputs, expected, atol=1e-4, err_msg=name)
    onnx_ops = {node.op_type for node in onnx.load(directory / "model.onnx").graph.node}
    assert not onnx_ops & {"ImageProjectiveTransformV3", "StatelessRandomUniformV2", "RandomUniform"}
    assert figures["onnx"]["test_accuracy"] == figures["keras"]["test_accuracy"]
    assert not any("Keras in float32" in line or line.startswith("warning") for line in lines)


def test_a_float_file_that_scores_otherwise_than_its_model_is_not_kept(project, tmp_path, monkeypatch):
    root = tmp_path / "project"
    shutil.copytree(project, root)
    real_measure = export_module.measure

    def measure_onnx_wrong(call, images, labels, settings):
        figures = real_measure(call, images, labels, settings)
        if isinstance(call, runtimes.OnnxModel):
            figures["test_accuracy"] -= 0.25  # as a graph converted with its BatchNorm in training mode scored
        return figures

    monkeypatch.setattr(export_module, "measure", measure_onnx_wrong)
    lines = []

    figures = export_variant(VARIANT, SETTINGS, root, report=lines.append)

    difference = -25.0
    why = f"exported, but not kept: it scores {difference:+.2f} points against the float32 Keras model it comes from"
    assert figures["onnx"] == {"skipped": why}
    assert f"warning: {VARIANT}: ONNX {why}" in lines
    assert sorted(p.name for p in (root / "exports" / VARIANT).iterdir()) == [
        "card.json",
        "model.tflite",
        "model_dynamic.tflite",
    ]
    assert json.loads((root / "metrics" / "export" / f"{VARIANT}.json").read_text())["onnx"] == {"skipped": why}


@keras.saving.register_keras_serializable(package="test_export")
class Erf(keras.layers.Layer):
    """keras.ops.erf: the LiteRT converter keeps it as the TensorFlow op (Flex), ONNX has it."""

    def call(self, inputs):
        return keras.ops.erf(inputs)


def test_a_litert_file_that_ai_edge_litert_cannot_run_is_skipped_and_the_rest_still_runs(project):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = Erf()(keras.layers.Conv2D(4, 3)(x))
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(6, activation="softmax")(x))
    write_variant(project, "flex", model, json.loads((project / "models" / VARIANT / "card.json").read_text()))
    lines = []

    figures = export_variant("flex", SETTINGS, project, report=lines.append)

    why = (
        "exported, but ai-edge-litert cannot run it: it needs the TensorFlow op Erf (Select TF ops), "
        "and ai-edge-litert has no Flex delegate"
    )
    assert figures["tflite"] == figures["tflite_dynamic"] == {"skipped": why}
    assert f"flex: LiteRT float {why}" in lines
    assert abs(figures["onnx"]["test_accuracy"] - figures["keras_float32"]["test_accuracy"]) <= 0.001
    assert sorted(p.name for p in (project / "exports" / "flex").iterdir()) == ["card.json", "model.onnx"]


def test_onnx_ops_are_looked_up_in_their_own_domain(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    def write(node):
        value = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1]) for name in ("x", "y")]
        graph = helper.make_graph([node], "g", value[:1], value[1:])
        onnx.save(helper.make_model(graph), tmp_path / "model.onnx")
        return tmp_path / "model.onnx"

    check_onnx_ops(write(helper.make_node("Binarizer", ["x"], ["y"], domain="ai.onnx.ml")), [])  # ONNX-ML has it
    with pytest.raises(ExportFailed, match=r"cannot convert the TensorFlow op org\.example:Relu$"):
        check_onnx_ops(write(helper.make_node("Relu", ["x"], ["y"], domain="org.example")), [])


def test_export_figures_of_other_data_are_left_out_of_the_comparison_with_one_line(project, exported, tmp_path, capsys):
    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    path = copy / "metrics" / "export" / f"{VARIANT}.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "dataset": "cifar10:0123456789ab"}))
    layers = {"layers": [{"type": "flatten"}, {"type": "dense", "units": "classes", "activation": "softmax"}]}

    (row,) = variant_rows({VARIANT: validate_variant(layers, "variants.v")}, copy)

    assert "keras_latency_ms" not in row and "tflite_test_accuracy" not in row and row["evaluated"]
    dataset = json.loads((copy / "metrics" / f"{VARIANT}.json").read_text())["dataset"]
    assert capsys.readouterr().err.splitlines() == [
        f"warning: {path}: made on cifar10:0123456789ab, but metrics/{VARIANT}.json on {dataset}; "
        f"its figures are left out: run `dvc repro export@{VARIANT}`"
    ]
    assert export_cells([row]) == ([], [])


def test_the_stage_gives_tensorflow_as_many_threads_as_the_runtimes(project, tmp_path):
    copy = tmp_path / "project"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("exports", "export"))
    settings = {"formats": ["tflite"], "latency_calls": 50, "warmup_calls": 1, "threads": 2}
    params = {"data": {"dataset": "digits"}, "variants": {VARIANT: small_variant()}, "export": settings}
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    run_stage(copy, "stages.export", VARIANT, timeout=600)

    figures = json.loads((copy / "metrics" / "export" / f"{VARIANT}.json").read_text())
    assert figures["threads"] == 2 and figures["tensorflow_threads"] == {"intra_op": 2, "inter_op": 2}
    assert "test_accuracy" in figures["tflite"]
