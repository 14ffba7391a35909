import json
import shutil

import numpy as np
import pytest
from PIL import Image

import cnnlab.predict
from cnnlab import gradcam
from cnnlab.data.images import image_to_array
from cnnlab.evaluation import load_model, predict_probabilities
from cnnlab.predict import main
from tests.model_fixtures import CLASSES, VARIANT, card_for, identity_model, trained_project, write_variant


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return trained_project(tmp_path_factory)


@pytest.fixture
def in_project(project, monkeypatch):
    monkeypatch.chdir(project)
    monkeypatch.setattr(cnnlab.predict, "load_params", lambda: {"variants": {VARIANT: {"tta": False}}})
    return project


def prepared_test_split(project):
    with np.load(project / "data" / "prepared" / "test.npz") as arrays:
        return arrays["x"], arrays["y"]


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_prediction_of_a_saved_test_image_equals_its_evaluation(in_project, tmp_path, capsys):
    images, _ = prepared_test_split(in_project)
    evaluated = np.load(in_project / "eval" / VARIANT / "probabilities.npy")
    paths = []
    for index in (0, 7, 31):
        paths.append(tmp_path / f"test_{index}.png")
        Image.fromarray(images[index]).save(paths[-1])  # PNG: lossless

    code, out, _ = run(["--variant", VARIANT, "--json", "--top-k", "1", *map(str, paths)], capsys)

    assert code == 0
    results = json.loads(out)
    for result, index in zip(results, (0, 7, 31)):
        assert result["image"] == str(tmp_path / f"test_{index}.png")
        (top,) = result["predictions"]
        assert top["class"] == CLASSES[evaluated[index].argmax()]
        assert top["probability"] == pytest.approx(evaluated[index].max(), rel=1e-5)


def test_unreadable_files_are_reported_and_the_rest_classified(in_project, tmp_path, capsys):
    images, _ = prepared_test_split(in_project)
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(images[3]).save(folder / "good.png")
    Image.fromarray(images[4]).save(folder / "also_good.jpg", quality=95)
    (folder / "broken.png").write_bytes(b"not an image")
    (folder / "notes.txt").write_text("skipped: not an image suffix")

    code, out, err = run(["--variant", VARIANT, str(folder), str(tmp_path / "missing.png")], capsys)

    assert code == 1
    errors = err.strip().splitlines()
    assert len(errors) == 2
    assert errors[0].startswith(f"error: {folder / 'broken.png'}: not a readable image")
    assert errors[1].startswith(f"error: {tmp_path / 'missing.png'}: not a readable image")
    lines = out.strip().splitlines()
    assert lines[0].split() == ["image", "rank", "class", "probability"]
    assert [line.split()[:2] for line in lines[1:]] == [
        [str(folder / name), str(rank)] for name in ("also_good.jpg", "good.png") for rank in (1, 2, 3)
    ]


def test_json_lists_top_k_classes_best_first(in_project, tmp_path, capsys):
    images, _ = prepared_test_split(in_project)
    Image.fromarray(images[0]).save(tmp_path / "a.png")

    code, out, _ = run(["--variant", VARIANT, "--json", "--top-k", "4", str(tmp_path / "a.png")], capsys)

    (result,) = json.loads(out)
    probabilities = [p["probability"] for p in result["predictions"]]
    assert code == 0 and len(probabilities) == 4 and probabilities == sorted(probabilities, reverse=True)
    assert {p["class"] for p in result["predictions"]} <= set(CLASSES)


def test_model_path_resizes_like_the_prepare_stage(project, tmp_path, capsys):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 24, 3), dtype=np.uint8)).save(tmp_path / "big.png")
    model = load_model(project / "models" / VARIANT / "model.keras", "train")
    with Image.open(tmp_path / "big.png") as photo:
        prepared = image_to_array(photo, (16, 16), 3)
    expected = predict_probabilities(model, prepared[None])[0]

    code, out, _ = run(
        [
            "--model",
            str(project / "models" / VARIANT / "model.keras"),
            "--json",
            "--top-k",
            "6",
            str(tmp_path / "big.png"),
        ],
        capsys,
    )

    got = {p["class"]: p["probability"] for p in json.loads(out)[0]["predictions"]}
    assert code == 0
    assert [got[name] for name in CLASSES] == pytest.approx(expected, rel=1e-5)


def test_model_folder_as_dvc_artifacts_get_fetches_it(project, tmp_path, capsys):
    fetched = tmp_path / "fetched"
    shutil.copytree(project / "models" / VARIANT, fetched)
    image = tmp_path / "photo.png"
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(image)

    by_folder = run(["--model", str(fetched), "--json", str(image)], capsys)
    by_file = run(["--model", str(fetched / "model.keras"), "--json", str(image)], capsys)

    assert by_folder[0] == 0 and json.loads(by_folder[1]) == json.loads(by_file[1])


def test_grayscale_model_with_extra_outputs_names_them(tmp_path, capsys):
    """A 3-class card, a Dense(5, sigmoid) head, 1 x 5 grayscale input; the RGB file is converted."""
    write_variant(
        tmp_path, "wide", identity_model(5, activation="sigmoid"), card_for(["cat", "dog", "bird"], (1, 5, 1), 1)
    )
    pixels = np.array([[0, 200, 0, 0, 250]], dtype=np.uint8)
    Image.fromarray(np.repeat(pixels[..., None], 3, axis=2)).save(tmp_path / "x.png")

    code, out, _ = run(
        ["--model", str(tmp_path / "models" / "wide" / "model.keras"), "--json", str(tmp_path / "x.png")], capsys
    )

    predictions = json.loads(out)[0]["predictions"]
    assert code == 0
    assert [p["class"] for p in predictions] == ["output_4", "dog", "cat"]
    assert predictions[0]["probability"] == pytest.approx(1 / (1 + np.exp(-10 * 250 / 255)), rel=1e-5)


def test_variant_with_tta_averages_with_the_mirror(in_project, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cnnlab.predict, "load_params", lambda: {"variants": {VARIANT: {"tta": True}}})
    images, _ = prepared_test_split(in_project)
    Image.fromarray(images[2]).save(tmp_path / "a.png")
    model = load_model(in_project / "models" / VARIANT / "model.keras", "train")
    expected = predict_probabilities(model, images[2:3], tta=True)[0]

    _, out, _ = run(["--variant", VARIANT, "--json", "--top-k", "1", str(tmp_path / "a.png")], capsys)

    assert json.loads(out)[0]["predictions"][0]["probability"] == pytest.approx(expected.max(), rel=1e-5)


def test_untrained_variant_names_the_file_and_the_command(in_project, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--variant", "ghost", str(tmp_path)])

    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "models/ghost/model.keras" in error and "dvc repro train@ghost" in error


def test_empty_folder_is_a_one_line_error(in_project, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--variant", VARIANT, str(tmp_path)])
    assert capsys.readouterr().err.strip() == f"error: no image files found in {tmp_path}"


def test_explain_writes_one_grad_cam_overlay_per_image(in_project, tmp_path, capsys):
    images, _ = prepared_test_split(in_project)
    for folder, index in (("a", 0), ("b", 5), ("b", 9)):
        (tmp_path / folder).mkdir(exist_ok=True)
        Image.fromarray(images[index]).save(tmp_path / folder / f"{'cat' if index < 9 else 'dog'}.png")
    explained = tmp_path / "explained"

    code, out, _ = run(
        ["--variant", VARIANT, "--explain", str(explained), str(tmp_path / "a"), str(tmp_path / "b")], capsys
    )

    assert code == 0 and "cat" in out
    assert sorted(p.name for p in explained.iterdir()) == [
        "cat-2.png.gradcam.png",
        "cat.png.gradcam.png",
        "dog.gradcam.png",
    ]
    with Image.open(explained / "dog.gradcam.png") as overlay:
        assert overlay.width >= 300


def test_explanation_names_keep_apart_images_that_share_a_stem_or_a_name():
    names = cnnlab.predict.explanation_names(["x/cat.jpg", "x/cat.png", "y/cat.png", "dog.png", "dog.gradcam.png"])

    assert names == [
        "cat.jpg.gradcam.png",
        "cat.png.gradcam.png",
        "cat-2.png.gradcam.png",
        "dog.gradcam.png",
        "dog.gradcam.gradcam.png",
    ]


def test_explain_draws_the_heatmap_of_each_images_top_class(in_project, tmp_path, capsys, monkeypatch):
    images, _ = prepared_test_split(in_project)
    for index in (1, 4, 8):
        Image.fromarray(images[index]).save(tmp_path / f"test_{index}.png")
    drawn = {}
    save_figures = cnnlab.predict.save_figures
    monkeypatch.setattr(
        cnnlab.predict,
        "save_figures",
        lambda figures, directory: drawn.update(figures) or save_figures(figures, directory),
    )
    model = load_model(in_project / "models" / VARIANT / "model.keras", "train")

    code, out, _ = run(["--variant", VARIANT, "--json", "--explain", str(tmp_path / "why"), str(tmp_path)], capsys)

    assert code == 0 and sorted(drawn) == ["test_1.gradcam.png", "test_4.gradcam.png", "test_8.gradcam.png"]
    for result, index in zip(json.loads(out), (1, 4, 8)):
        top = result["predictions"][0]
        plain, explained = drawn[f"test_{index}.gradcam.png"].axes
        assert plain.get_title() == f"test_{index}.png"
        assert explained.get_title() == f"Grad-CAM of {top['class']} ({top['probability']:.2f})"
        heatmap = explained.images[-1].get_array()
        assert heatmap.shape == (16, 16)
        expected = gradcam.heatmaps(model, images[index : index + 1], [CLASSES.index(top["class"])])[0]
        np.testing.assert_allclose(heatmap, expected, atol=1e-6)


def test_explain_into_the_images_own_folder_never_replaces_a_file(in_project, tmp_path, capsys):
    images, _ = prepared_test_split(in_project)
    Image.fromarray(images[0]).save(tmp_path / "cat.png")
    Image.fromarray(images[1]).save(tmp_path / "cat.jpg")
    originals = {path.name: path.read_bytes() for path in tmp_path.iterdir()}

    code, _, _ = run(["--variant", VARIANT, "--explain", str(tmp_path), str(tmp_path / "cat.png")], capsys)

    assert code == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cat.gradcam.png", "cat.jpg", "cat.png"]
    assert {name: (tmp_path / name).read_bytes() for name in originals} == originals
    overlay = (tmp_path / "cat.gradcam.png").read_bytes()

    with pytest.raises(SystemExit) as stop:  # again: the overlay is there, so nothing is touched
        main(["--variant", VARIANT, "--explain", str(tmp_path), str(tmp_path / "cat.png")])

    assert stop.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.strip().splitlines() == [
        f"error: {tmp_path / 'cat.gradcam.png'}: exists already, and --explain never replaces a file; "
        "move it away or give --explain another folder"
    ]
    assert (tmp_path / "cat.gradcam.png").read_bytes() == overlay

    code, _, _ = run(
        ["--variant", VARIANT, "--explain", str(tmp_path), str(tmp_path / "cat.png"), str(tmp_path / "cat.jpg")], capsys
    )

    assert code == 0  # the two cats now keep their suffixes apart
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "cat.gradcam.png",
        "cat.jpg",
        "cat.jpg.gradcam.png",
        "cat.png",
        "cat.png.gradcam.png",
    ]
    assert (tmp_path / "cat.gradcam.png").read_bytes() == overlay


def test_an_unknown_explain_layer_names_the_option_and_the_layers_to_choose_from(in_project, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--variant", VARIANT, "--explain", str(tmp_path / "why"), "--explain-layer", "conv9", str(tmp_path)])

    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --explain-layer: {VARIANT}: no layer named 'conv9' on the way to its output; "
        "layers with a spatial feature map: scale, conv1, pool1, conv2"
    )


def test_explain_refuses_a_model_without_convolution_in_one_line(tmp_path, capsys):
    card = card_for(["a", "b", "c"], (1, 3, 1), 0)
    write_variant(tmp_path, "dense", identity_model(3), card)
    Image.fromarray(np.zeros((1, 3), np.uint8)).save(tmp_path / "x.png")

    with pytest.raises(SystemExit) as stop:
        main(
            ["--model", str(tmp_path / "models" / "dense"), "--explain", str(tmp_path / "out"), str(tmp_path / "x.png")]
        )

    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().endswith("no convolution layer, so no Grad-CAM heatmap")
    assert not (tmp_path / "out").exists()
