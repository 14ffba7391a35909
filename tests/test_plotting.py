import errno

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cnnlab.errors import ConfigError, UserError
from cnnlab.evaluation import load_model, load_test_split
from cnnlab.fileio import DiskFullError
from cnnlab.plotting import plot_comparison, plot_confusion, plot_curves, plot_per_class, save_figure, save_figures
from cnnlab.variant_plots import feature_map_figures, write_variant_plots
from tests.model_fixtures import CLASSES, VARIANT, trained_project

SETTINGS = {
    "samples": 25,
    "top_wrong": 8,
    "confused_pairs": 4,
    "feature_map_images": None,
    "feature_map_channels": 16,
    "max_classes": 20,
    "gradcam_layers": {},
}
HISTORY = {
    "loss": [1.2, 0.8, 0.6, 0.7],
    "accuracy": [0.5, 0.7, 0.8, 0.85],
    "val_loss": [1.1, 0.9, 0.7, 0.8],
    "val_accuracy": [0.55, 0.65, 0.75, 0.7],
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return trained_project(tmp_path_factory)


@pytest.fixture(scope="module")
def variant_figures(project):
    return write_variant_plots(VARIANT, SETTINGS, project)


def test_curves_plot_train_and_validation_with_best_epoch(tmp_path):
    figure = plot_curves(HISTORY, best_epoch=3)

    accuracy, loss = figure.axes
    assert [ax.get_title() for ax in figure.axes] == ["Accuracy", "Loss"]
    assert [line.get_label() for line in accuracy.lines] == ["train", "validation", "best epoch (3)"]
    np.testing.assert_array_equal(loss.lines[1].get_ydata(), HISTORY["val_loss"])
    np.testing.assert_array_equal(loss.lines[0].get_xdata(), [1, 2, 3, 4])
    assert list(accuracy.lines[2].get_xdata()) == [3, 3]
    with Image.open(save_figure(figure, tmp_path / "curves.png")) as png:
        assert png.width >= 1000 and png.height >= 400


def test_curves_without_validation_show_training_only():
    figure = plot_curves({"loss": [1.0, 0.5], "accuracy": [0.4, 0.6]}, best_epoch=None)
    assert [line.get_label() for line in figure.axes[0].lines] == ["train"]


def test_save_figures_shares_the_figures_among_processes(tmp_path):
    figures = {f"maps/{i}.png": plot_curves(HISTORY, best_epoch=i % 4 + 1) for i in range(6)}

    save_figures(figures, tmp_path, processes=2)

    assert sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*")) == ["maps", *sorted(figures)]
    for name in figures:
        with Image.open(tmp_path / name) as png:
            assert png.format == "PNG" and png.width >= 1000


def test_save_figures_raises_what_failed_in_a_child_process(tmp_path):
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    figures = {f"{i}.png": plot_curves(HISTORY) for i in range(6)}
    figures["3.png"].savefig = disk_full  # 1, 3 and 5 are the child's share

    with pytest.raises(DiskFullError, match=r"3\.png: disk full while writing it"):
        save_figures(figures, tmp_path, processes=2)
    assert (tmp_path / "0.png").exists() and not (tmp_path / "3.png").exists()


CONFUSION = pd.DataFrame([[8, 2, 0], [1, 9, 0], [0, 5, 5]], index=CLASSES[:3], columns=CLASSES[:3])


def test_confusion_counts_and_row_normalized_shares():
    counts = plot_confusion(CONFUSION).axes[0]
    shares = plot_confusion(CONFUSION, normalize=True).axes[0]

    np.testing.assert_array_equal(counts.images[0].get_array(), CONFUSION.to_numpy())
    np.testing.assert_allclose(shares.images[0].get_array().sum(axis=1), 1.0)
    assert shares.images[0].get_array()[2, 1] == 0.5
    assert [t.get_text() for t in counts.get_xticklabels()] == CLASSES[:3]
    assert [t.get_text() for t in counts.get_yticklabels()] == CLASSES[:3]
    assert "2" in [t.get_text() for t in counts.texts]


def test_confusion_of_many_classes_shows_the_most_confused():
    names = [f"class{i}" for i in range(30)]
    matrix = np.diag(np.full(30, 10))
    matrix[4, 7] = matrix[7, 4] = matrix[12, 29] = 3
    confusion = pd.DataFrame(matrix, index=names, columns=names)

    ax = plot_confusion(confusion, normalize=True, max_classes=3).axes[0]

    assert [t.get_text() for t in ax.get_yticklabels()] == ["class4", "class7", "class12"]
    assert "the 3 most confused of 30 classes" in ax.get_title()
    assert ax.images[0].get_array()[0, 1] == pytest.approx(3 / 13)  # share of class4's whole row


def test_per_class_bars_and_lowest_f1_subset():
    per_class = pd.DataFrame(
        [("cat", 0.5, 0.4, 0.44, 10), ("dog", 0.9, 0.8, 0.85, 10), ("bird", 0.2, 0.3, 0.24, 10)],
        columns=["class", "precision", "recall", "f1", "support"],
    )

    all_classes = plot_per_class(per_class).axes[0]
    worst_two = plot_per_class(per_class, max_classes=2).axes[0]

    assert len(all_classes.patches) == 6
    assert [p.get_width() for p in all_classes.patches[:3]] == [0.5, 0.9, 0.2]
    assert [t.get_text() for t in worst_two.get_yticklabels()] == ["bird", "cat"]
    assert "lowest F1 of 3" in worst_two.get_title()


def png_size(path):
    with Image.open(path) as png:
        return png.size


def test_variant_plots_are_written_with_panels_a_person_can_read(project, variant_figures):
    plots = project / "plots" / VARIANT
    names = {p.relative_to(plots).as_posix() for p in plots.rglob("*.png")}

    assert names == {
        "curves.png",
        "confusion.png",
        "confusion_normalized.png",
        "per_class.png",
        "filters.png",
        "predictions.png",
        "mistakes.png",
        "confused_pairs.png",
        "feature_maps/conv1.png",
        "feature_maps/conv2.png",
    }
    assert len(variant_figures["predictions.png"].axes) == 2 * 25  # each image: predicted-class and true-class Grad-CAM
    assert len(variant_figures["filters.png"].axes) == 8
    for name in names:
        width, height = png_size(plots / name)
        assert width >= 400 and height >= 150, name
    width, _ = png_size(plots / "predictions.png")
    assert width >= 8 * 150  # 4 pairs of panels at least 150 px wide


def test_feature_maps_show_first_image_of_each_class(project, variant_figures):
    labels = np.load(project / "data" / "prepared" / "test.npz")["y"]
    figure = variant_figures["feature_maps/conv2.png"]

    captions = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert captions == [f"#{int(np.argmax(labels == c))} {name}" for c, name in enumerate(CLASSES)]
    assert len(figure.axes[0].images) == len(CLASSES) * 2  # each row: the image and its strip
    assert figure.get_suptitle() == "conv2: output 8x8x20 (first 16 of 20 channels)"


def test_mistakes_plot_shows_the_most_confident_wrong_predictions(project, variant_figures):
    predictions = pd.read_csv(project / "eval" / VARIANT / "predictions.csv")
    wrong = predictions[predictions.actual != predictions.predicted].set_index("index")["probability"]
    shown = [int(ax.get_title().split()[0][1:]) for ax in variant_figures["mistakes.png"].axes[::2]]

    assert len(wrong) > len(shown) == 8
    assert set(shown) <= set(wrong.index)
    assert wrong[shown].min() >= wrong.drop(shown).max()


def test_mistakes_show_where_the_model_saw_the_predicted_and_the_true_class(project, variant_figures):
    predictions = pd.read_csv(project / "eval" / VARIANT / "predictions.csv").set_index("index")
    axes = variant_figures["mistakes.png"].axes

    for predicted_panel, true_panel in zip(axes[::2], axes[1::2]):
        index = int(predicted_panel.get_title().split()[0][1:])
        assert predicted_panel.get_xlabel() == f"where it saw {predictions.predicted[index]}"
        assert true_panel.get_xlabel() == f"where it saw {predictions.actual[index]}"
        for panel in (predicted_panel, true_panel):
            image, heatmap = panel.images
            assert heatmap.get_array().shape == image.get_array().shape[:2]
            assert 0 <= heatmap.get_array().min() and heatmap.get_array().max() <= 1


def test_feature_map_indices_from_settings(project):
    figures = feature_map_figures(
        *load_for_feature_maps(project), {**SETTINGS, "feature_map_images": [5, 7], "feature_map_channels": 4}
    )
    figure = figures["feature_maps/conv1.png"]
    assert [t.get_text().split()[0] for t in figure.axes[0].get_yticklabels()] == ["#5", "#7"]
    assert "first 4 of 8 channels" in figure.get_suptitle()


def load_for_feature_maps(project):
    images, labels, card = load_test_split(project)
    return load_model(project / "models" / VARIANT / "model.keras", "train"), images, labels, card["classes"]


def test_out_of_range_feature_map_index_names_the_key(project):
    with pytest.raises(ConfigError, match=r"plots.feature_map_images: \[999\] out of range"):
        feature_map_figures(*load_for_feature_maps(project), {**SETTINGS, "feature_map_images": [999]})


def test_variant_plots_name_the_command_that_makes_a_missing_input(project):
    with pytest.raises(UserError, match=r"models/untrained/history.json.*dvc repro train@untrained"):
        write_variant_plots("untrained", SETTINGS, project)


def test_labels_of_crowded_points_do_not_cover_each_other():
    frame = pd.DataFrame(
        {
            "variant": ["far_away", "alexnet", "vgg16", "resnet"],
            "params": [1e5, 3.1e6, 3.2e6, 3.15e6],
            "train_seconds": [1.0, 10.0, 10.5, 10.2],
            "test_accuracy": [0.9, 0.101, 0.100, 0.100],
        }
    )
    for ax in plot_comparison(frame).axes:
        offsets = {text.get_text(): text.xyann[1] for text in ax.texts}
        assert offsets["far_away"] == 5, "a label with room stays beside its point"
        crowded = sorted(offsets[name] for name in ("alexnet", "vgg16", "resnet"))
        assert crowded == [5 - 22, 5 - 11, 5], "each crowded label moves down one line"
