"""Every picture of one evaluated variant -> plots/<variant>/ (written by the evaluate stage)."""

import numpy as np
import pandas as pd

from cnnlab import gradcam, inspection, plotting
from cnnlab.errors import ConfigError, DataError
from cnnlab.evaluation import confusion_frame, load_test_split, load_variant_model, output_names
from cnnlab.fileio import atomic_path, load_json, require
from cnnlab.layout import eval_dir, evaluate_command, model_dir, per_class_path, plots_dir, train_command


def write_variant_plots(variant, settings, root=".", model=None):
    """Write every PNG of one variant into plots/<variant>/ (replaced as a whole).

    `model`: the variant's model if the caller has loaded it already (load_variant_model)."""
    images, labels, card = load_test_split(root)
    classes = card["classes"]
    trained = model_dir(root, variant)
    history = load_json(trained / "history.json", train_command(variant))
    training = load_json(trained / "training.json", train_command(variant))
    per_class = pd.read_csv(require(per_class_path(root, variant), evaluate_command(variant)))
    evaluated = eval_dir(root, variant)
    probabilities = np.load(require(evaluated / "probabilities.npy", evaluate_command(variant)))
    if len(probabilities) != len(labels):
        raise DataError(
            f"{evaluated / 'probabilities.npy'}: {len(probabilities)} rows but the test split has "
            f"{len(labels)} images; rerun `{evaluate_command(variant)}`"
        )
    model = model or load_variant_model(root, variant)
    names = output_names(classes, probabilities.shape[1])
    confusion = confusion_frame(labels, probabilities, names, len(classes))
    explain = grad_cam(model, images, settings["gradcam_layers"].get(variant), variant)
    samples = inspection.evenly_spaced(len(labels), settings["samples"])

    figures = {
        "curves.png": plotting.plot_curves(history, training.get("best_epoch")),
        "confusion.png": plotting.plot_confusion(confusion, max_classes=settings["max_classes"]),
        "confusion_normalized.png": plotting.plot_confusion(
            confusion, normalize=True, max_classes=settings["max_classes"]
        ),
        "per_class.png": plotting.plot_per_class(per_class, settings["max_classes"]),
        "filters.png": inspection.plot_filters(model),
        "predictions.png": inspection.plot_predictions(
            images,
            labels,
            probabilities,
            names,
            samples,
            "Sample test predictions (wrong ones in red)",
            inspection.explanations(explain, labels, probabilities, samples) if explain else None,
        ),
        "mistakes.png": inspection.plot_mistakes(images, labels, probabilities, names, settings["top_wrong"], explain),
        "confused_pairs.png": inspection.plot_confused_pairs(
            images, labels, probabilities, classes, inspection.confused_pairs(confusion, settings["confused_pairs"])
        ),
    }
    figures.update(feature_map_figures(model, images, labels, classes, settings))
    with atomic_path(plots_dir(root, variant)) as tmp:
        plotting.save_figures(figures, tmp)
    return figures


def grad_cam(model, images, layer, variant):
    """(test-image indices, classes) -> Grad-CAM heatmaps with `model`, or None (with one line
    saying so) when the model has no convolution to explain."""
    try:
        gradcam.target_tensor(model, layer)
    except gradcam.NoConvolution as error:
        print(f"{variant}: {error}", flush=True)
        return None
    except ConfigError as error:
        raise ConfigError(f"plots.gradcam_layers.{variant}: {error}") from None
    return lambda indices, classes: gradcam.heatmaps(model, images[indices], classes, layer)


def feature_map_figures(model, images, labels, classes, settings):
    indices = settings["feature_map_images"]
    if indices is None:
        indices = inspection.first_image_of_each_class(labels, len(classes), settings["max_classes"])
    bad = [i for i in indices if not 0 <= i < len(images)]
    if bad:
        raise ConfigError(f"plots.feature_map_images: {bad} out of range; the test split has {len(images)} images")
    captions = [f"#{i} {classes[labels[i]]}" for i in indices]
    maps = inspection.feature_maps(model, images[indices])
    return {
        f"feature_maps/{name.replace('/', '.')}.png": inspection.plot_feature_maps(
            name, values, images[indices], captions, settings["feature_map_channels"]
        )
        for name, values in maps.items()
    }
