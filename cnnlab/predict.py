"""Classify new image files with a trained variant, preprocessed exactly like its dataset.

    python -m stages.predict --variant NAME [--top-k 3] [--json] IMAGE_OR_FOLDER...
    python -m stages.predict --model path/to/model.keras IMAGE_OR_FOLDER...   (card.json beside it)
    python -m stages.predict --model FOLDER IMAGE_OR_FOLDER...   (model.keras and card.json in it, as
                                                               `dvc artifacts get . VARIANT` fetches them)
    python -m stages.predict --model exports/VARIANT/model.tflite|model.onnx IMAGE_OR_FOLDER...
                                   (an exported file, run by ai-edge-litert or onnxruntime; card.json beside it)
    python -m stages.predict --variant NAME --explain DIR IMAGE_OR_FOLDER...
                                   (also writes DIR/<image>.gradcam.png: the image under the Grad-CAM heatmap of
                                    its top class; an existing file is never replaced)

The model takes raw 0-255 pixels (normalization is inside it), so an image only needs the
dataset's channel conversion and resize (card.json `shape`), done by the same function that
prepared the training images. Unreadable files are reported one line each on stderr; the
others are still classified and the exit code is 1.
"""

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from cnnlab import gradcam, runtimes
from cnnlab.config import load_params, variant_params
from cnnlab.data.images import IMAGE_SUFFIXES, ImageSpec, load_image_file
from cnnlab.errors import ConfigError, DataError, UserError, exit_on_user_error
from cnnlab.evaluation import check_input_shape, load_model, output_names, predict_probabilities
from cnnlab.fileio import load_json
from cnnlab.inspection import overlay_heatmap
from cnnlab.layout import model_dir, train_command
from cnnlab.plotting import save_figures, show_image

UNREADABLE = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


def load_image(path, shape):
    """A uint8 H x W x C image preprocessed exactly like the dataset's images (the prepare
    stage's own `load_image_file`: orientation, alpha on white, channels, antialiased resize)."""
    height, width, channels = shape
    try:
        pixels, _ = load_image_file(path, ImageSpec((height, width), channels))
    except UNREADABLE as error:
        raise DataError(f"{path}: not a readable image ({error})") from None
    return pixels


def expand_paths(paths):
    """Files as given, folders replaced by the image files inside them (recursively, sorted)."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        else:
            files.append(path)
    return files


def load_classifier(variant=None, model_path=None):
    """(model, card) of a trained variant (models/<variant>/) or of a model.keras with card.json beside it."""
    if variant is not None:
        directory, command = model_dir(".", variant), train_command(variant)
        model_path = directory / "model.keras"
    else:
        if Path(model_path).is_dir():  # a variant's folder, as `dvc artifacts get` fetches it
            model_path = Path(model_path) / "model.keras"
        directory, command = Path(model_path).parent, "dvc repro train@<variant>"
    if Path(model_path).suffix in runtimes.RUNTIME_MODULES:
        return runtimes.load_exported(model_path), load_json(directory / "card.json", "dvc repro export@<variant>")
    model = load_model(model_path, command)
    return model, load_json(directory / "card.json", command)


def top_predictions(probabilities, names, top_k):
    """[(name, probability)] of the `top_k` highest outputs, best first."""
    order = np.argsort(-probabilities, kind="stable")[:top_k]
    return [(names[i], float(probabilities[i])) for i in order]


def classify_files(model, card, paths, top_k=3, tta=False, explain_to=None, layer=None):
    """Classify image files; returns ({file: [(class, probability)]}, [error message per unreadable file]).

    `explain_to`: a folder that gets one PNG per image (explanation_names), the image under the
    Grad-CAM heatmap of its top class (`layer`: the layer to explain, default the last spatial
    conv feature map); nothing is classified when one of them exists already."""
    files = expand_paths(paths)
    if not files:
        raise UserError(f"no image files found in {', '.join(map(str, paths))}")
    images, loaded, errors = [], [], []
    for path in files:
        try:
            images.append(load_image(path, card["shape"]))
            loaded.append(str(path))
        except DataError as error:
            errors.append(str(error))
    if not images:
        return {}, errors
    if explain_to is not None:
        check_free(Path(explain_to), explanation_names(loaded))
    batch = np.stack(images)
    check_input_shape(model, batch, "card.json shape")
    probabilities = predict_probabilities(model, batch, tta=tta)
    names = output_names(card["classes"], probabilities.shape[1])
    if explain_to is not None:
        write_explanations(model, batch, probabilities, names, loaded, explain_to, layer)
    return {path: top_predictions(row, names, top_k) for path, row in zip(loaded, probabilities)}, errors


def check_explainable(model, layer):
    """One line, before anything is classified, when `model` cannot be explained by Grad-CAM."""
    if isinstance(model, runtimes.RuntimeModel):
        raise UserError(
            "--explain needs the Keras model (--variant or a model.keras): an exported file has no gradients"
        )
    try:
        gradcam.target_tensor(model, layer)
    except gradcam.NoConvolution:
        raise
    except ConfigError as error:
        raise ConfigError(f"--explain-layer: {error}") from None


def explanation_names(paths):
    """One overlay name per image file: `<stem>.gradcam.png`; `<stem><suffix>.gradcam.png` when
    another image shares the stem (cat.jpg, cat.png); numbered from 2 when that is taken too
    (a/cat.png, b/cat.png: cat.png.gradcam.png, cat-2.png.gradcam.png)."""
    stems = Counter(Path(path).stem for path in paths)
    names = []
    for path in map(Path, paths):
        suffix = "" if stems[path.stem] == 1 else path.suffix
        name, number = f"{path.stem}{suffix}.gradcam.png", 1
        while name in names:
            number += 1
            name = f"{path.stem}-{number}{suffix}.gradcam.png"
        names.append(name)
    return names


def check_free(directory, names):
    """One line, before anything is written, when an overlay would replace a file (an input
    image among them): --explain never overwrites."""
    taken = [directory / name for name in names if (directory / name).exists()]
    if taken:
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise UserError(
            f"{taken[0]}: exists already{more}, and --explain never replaces a file; "
            "move it away or give --explain another folder"
        )


def write_explanations(model, images, probabilities, names, paths, directory, layer):
    top = probabilities.argmax(axis=1)
    heatmaps = gradcam.heatmaps(model, images, top, layer)
    figures = {}
    for name, path, image, heatmap, row, guess in zip(
        explanation_names(paths), paths, images, heatmaps, probabilities, top
    ):
        figure = Figure(figsize=(5, 2.9))
        plain, explained = figure.subplots(1, 2)
        show_image(plain, image)
        plain.set_title(Path(path).name, fontsize=9)
        overlay_heatmap(explained, image, heatmap)
        explained.set_title(f"Grad-CAM of {names[guess]} ({row[guess]:.2f})", fontsize=9)
        figures[name] = figure
    save_figures(figures, directory)


def format_table(results):
    rows = [
        {"image": path, "rank": rank, "class": name, "probability": f"{probability:.4f}"}
        for path, predictions in results.items()
        for rank, (name, probability) in enumerate(predictions, 1)
    ]
    return pd.DataFrame(rows, columns=["image", "rank", "class", "probability"]).to_string(index=False)


def format_json(results):
    return json.dumps(
        [
            {
                "image": path,
                "predictions": [{"class": name, "probability": probability} for name, probability in predictions],
            }
            for path, predictions in results.items()
        ],
        indent=2,
    )


def parse_args(argv, prog="python -m stages.predict"):
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--variant", help="a trained variant: loads models/VARIANT/")
    source.add_argument(
        "--model",
        help="a model.keras file with the dataset's card.json beside it, the "
        "folder holding both (what `dvc artifacts get` fetches), or an exported model.tflite / model.onnx "
        "(exports/VARIANT/, card.json beside it)",
    )
    parser.add_argument("images", nargs="+", help="image files or folders of images")
    parser.add_argument("--top-k", type=int, default=3, help="classes shown per image (default 3)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--tta",
        action="store_true",
        help="average with the mirrored image (a variant with `tta` set uses its own views by default)",
    )
    parser.add_argument(
        "--explain",
        metavar="DIR",
        type=Path,
        help="write DIR/<image>.gradcam.png: the Grad-CAM heatmap of each image's top class (never replacing a file)",
    )
    parser.add_argument(
        "--explain-layer",
        metavar="NAME",
        help="the layer Grad-CAM explains (default: the last spatial conv feature map)",
    )
    args = parser.parse_args(argv)
    if args.top_k < 1:
        parser.error("--top-k must be at least 1")
    return args


def variant_uses_tta(variant):
    return variant_params(load_params(), variant)["tta"]


@exit_on_user_error
def main(argv=None, prog="python -m stages.predict"):
    """Print the top-k classes of each image; return 1 if any file could not be read, else 0."""
    args = parse_args(argv, prog)
    model, card = load_classifier(args.variant, args.model)
    tta = (args.variant is not None and variant_uses_tta(args.variant)) or args.tta
    if args.explain is not None:
        check_explainable(model, args.explain_layer)
    results, errors = classify_files(model, card, args.images, args.top_k, tta, args.explain, args.explain_layer)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if results:
        print(format_json(results) if args.json else format_table(results))
    return 1 if errors else 0
