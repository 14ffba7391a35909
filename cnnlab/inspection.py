"""What a trained model sees and gets wrong: filters, feature maps, sample predictions, mistakes.

Images are the raw 0-255 test images from test.npz, drawn as they are.
"""

import math

import keras
import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from cnnlab.plotting import draw_image, mark_wrong, show_image

CONV_TYPES = (
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
    keras.layers.Conv2DTranspose,
)
MAX_FILTERS = 64
PAIR_EXAMPLES = 3
PANEL_INCHES = 2.2
SUPTITLE_INCHES = 0.4
ROW_GAP = 0.25  # space between feature-map rows, in row heights
ROW_INCHES = 0.85  # height of a feature-map row: 85 px per tile at 100 dpi


def image_grid(count, columns, panel_inches=PANEL_INCHES, title_lines=2):
    """A Figure with `count` axes in rows of `columns` (unused cells removed)."""
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    figure, axes = fixed_grid(rows, columns, panel_inches, title_lines)
    for ax in axes.ravel()[count:]:
        figure.delaxes(ax)
    return figure, list(axes.ravel()[:count])


def fixed_grid(rows, columns, panel_inches, title_lines):
    """rows x columns axes of `panel_inches`, spaced for `title_lines` of 9 pt title each.

    Spacing is fixed rather than found by constrained layout, which took half the drawing
    time of these many-panel figures; savefig's tight bounding box trims the margins.
    """
    title_inches = 0.17 * title_lines + 0.12
    height = rows * (panel_inches + title_inches) + SUPTITLE_INCHES
    figure = Figure(figsize=(columns * panel_inches * 1.1, height))
    axes = figure.subplots(
        rows,
        columns,
        squeeze=False,
        gridspec_kw={
            "left": 0,
            "right": 1,
            "bottom": 0,
            "top": 1 - (SUPTITLE_INCHES + title_inches) / height,
            "hspace": title_inches / panel_inches,
            "wspace": 0.1,
        },
    )
    return figure, axes


def empty_figure(message):
    figure = Figure(figsize=(6, 2))
    ax = figure.subplots()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12)
    ax.set_xticks([])
    ax.set_yticks([])
    return figure


def conv_layers(model):
    """Every convolution layer, in model order, nested sub-models (keras.applications) included."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from conv_layers(layer)
        elif isinstance(layer, CONV_TYPES):
            yield layer


# --- filters ---


def first_conv2d(model):
    return next((layer for layer in conv_layers(model) if isinstance(layer, keras.layers.Conv2D)), None)


def filter_images(kernel, limit=MAX_FILTERS):
    """First-layer filters as images, each scaled to [0, 1] on its own.

    kernel: (height, width, in_channels, filters). Three input channels are shown as RGB;
    any other count as the grayscale mean over the input channels.
    Returns (min(filters, limit), height, width, 3 or 1).
    """
    kernel = np.asarray(kernel, dtype=np.float32)[..., :limit]
    if kernel.shape[2] != 3:
        kernel = kernel.mean(axis=2, keepdims=True)
    images = np.moveaxis(kernel, -1, 0)
    low = images.min(axis=(1, 2, 3), keepdims=True)
    spread = images.max(axis=(1, 2, 3), keepdims=True) - low
    return (images - low) / np.where(spread > 0, spread, 1)


def plot_filters(model, limit=MAX_FILTERS):
    """Grid of the first Conv2D layer's filters (see `filter_images`)."""
    layer = first_conv2d(model)
    if layer is None:
        return empty_figure("No Conv2D layer in this model: no filters to show")
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    images = filter_images(kernel, limit)
    figure, axes = image_grid(len(images), columns=8, panel_inches=1.2, title_lines=1)
    for number, (ax, image) in enumerate(zip(axes, images)):
        show_image(ax, (image * 255).round())
        ax.set_title(str(number), fontsize=8)
    height, width, channels, filters = kernel.shape
    shown = f"all {filters}" if filters <= limit else f"first {limit} of {filters}"
    colours = {3: "RGB", 1: "grayscale"}.get(channels, f"grayscale mean of {channels} input channels")
    figure.suptitle(f"{layer.name}: {shown} filters, {height}x{width}, {colours}")
    return figure


# --- feature maps ---


def feature_maps(model, images):
    """{layer name: activations (N x H x W x C)} of every convolution layer for raw 0-255 images.

    A nested model's layers are named `<nested model>/<layer>` when their name is already taken.
    """
    maps = {}
    _collect_feature_maps(model, np.asarray(images, dtype=np.float32), maps)
    return maps


def _collect_feature_maps(model, inputs, maps):
    wanted = [layer for layer in model.layers if isinstance(layer, (keras.Model, *CONV_TYPES))]
    if not wanted:
        return
    tensors = {
        layer.name: _input_tensor_in_parent(layer) if isinstance(layer, keras.Model) else layer.output
        for layer in wanted
    }
    values = keras.Model(model.inputs, tensors).predict_on_batch(inputs)
    for layer in wanted:
        value = values[layer.name]
        if isinstance(layer, keras.Model):
            _collect_feature_maps(layer, value, maps)
        else:
            name = layer.name if layer.name not in maps else f"{model.name}/{layer.name}"
            maps[name] = np.asarray(value)


def _input_tensor_in_parent(nested):
    # `nested.input` is the nested model's own Input; the tensor feeding it in the parent
    # graph is only reachable through its call node (Keras has no public accessor).
    tensors = nested._inbound_nodes[0].input_tensors
    return tensors[0] if len(tensors) == 1 else tensors


def first_image_of_each_class(labels, num_classes, limit):
    """Test indices of the first image of each class, for the first `limit` classes present."""
    present = [c for c in range(num_classes) if np.any(labels == c)][:limit]
    return [int(np.argmax(labels == c)) for c in present]


def strip_gap(width):
    return max(1, width // 8)


def channel_strip(maps, low, high):
    """RGBA strip of one image's channels side by side (H x channels*(W+gap)-gap x 4), white gaps.

    Channel c is scaled to [low[c], high[c]] and coloured with viridis.
    """
    height, width, channels = maps.shape
    gap = strip_gap(width)
    scaled = (maps - low) / np.where(high > low, high - low, 1)
    tiles = colormaps["viridis"](np.moveaxis(scaled, -1, 0))
    padded = np.pad(tiles, ((0, 0), (0, 0), (0, gap), (0, 0)), constant_values=1.0)
    return np.moveaxis(padded, 0, 1).reshape(height, channels * (width + gap), 4)[:, :-gap]


def plot_feature_maps(name, maps, images, captions, channels=16):
    """One row per image: the image, then a strip of its first `channels` feature maps of layer `name`.

    Each channel has one colour scale across the images, so they can be compared down a column.
    Everything is drawn into one axes (each row one unit high): a deep network has dozens of
    conv layers, and one axes per row made these figures the slowest part of evaluation.
    """
    count, height, width, total = maps.shape
    shown = min(channels, total)
    maps = maps[..., :shown]
    low, high = maps.min(axis=(0, 1, 2)), maps.max(axis=(0, 1, 2))
    image_width = images.shape[2] / images.shape[1]
    strip_left = image_width + ROW_GAP
    step = (width + strip_gap(width)) / height  # one channel tile plus its gap, in row heights
    strip_right = strip_left + (shown * (width + strip_gap(width)) - strip_gap(width)) / height

    figure = Figure(
        figsize=(0.5 + strip_right * ROW_INCHES, count * (1 + ROW_GAP) * ROW_INCHES + 1.0), layout="constrained"
    )
    ax = figure.subplots()
    for row in range(count):
        top = row * (1 + ROW_GAP)
        draw_image(ax, images[row], extent=(0, image_width, top + 1, top))
        ax.imshow(
            channel_strip(maps[row], low, high), interpolation="nearest", extent=(strip_left, strip_right, top + 1, top)
        )
    ax.set_xlim(0, strip_right)
    ax.set_ylim(count * (1 + ROW_GAP) - ROW_GAP, 0)
    ax.set_yticks(np.arange(count) * (1 + ROW_GAP) + 0.5, captions, fontsize=8)
    ax.xaxis.tick_top()
    ax.set_xticks(
        strip_left + np.arange(shown) * step + width / height / 2, [f"ch {c}" for c in range(shown)], fontsize=8
    )
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    which = f"all {total} channels" if shown == total else f"first {shown} of {total} channels"
    figure.suptitle(f"{name}: output {height}x{width}x{total} ({which})")
    return figure


# --- predictions and mistakes ---


def evenly_spaced(total, count):
    """`count` indices spread evenly over range(total): deterministic and covers the whole split."""
    return np.unique(np.linspace(0, total - 1, min(count, total)).round().astype(int))


def plot_predictions(images, labels, probabilities, names, indices, title, heatmaps=None):
    """Grid of test images titled with true class, predicted class and its probability;
    wrong predictions framed and titled in red.

    `heatmaps` (from `explanations`): each image becomes a pair of panels, the image under the
    Grad-CAM heatmap of its predicted class, then under that of its true class when they
    differ (else the image alone)."""
    if heatmaps is not None:
        return plot_explained_predictions(images, labels, probabilities, names, indices, title, heatmaps)
    figure, axes = image_grid(len(indices), columns=min(8, math.ceil(math.sqrt(len(indices)))))
    for ax, index in zip(axes, indices):
        show_image(ax, images[index])
        title_prediction(ax, index, labels, probabilities, names)
    figure.suptitle(title)
    return figure


def title_prediction(ax, index, labels, probabilities, names):
    guess = probabilities[index].argmax()
    ax.set_title(
        f"#{index} true: {names[labels[index]]}\npred: {names[guess]} ({probabilities[index, guess]:.2f})",
        fontsize=9,
    )
    if guess != labels[index]:
        mark_wrong(ax)


def explanations(explain, labels, probabilities, indices):
    """{"predicted": heatmaps, "true": heatmaps} of the images at `indices`, by `explain`
    (images' indices, classes -> heatmaps; cnnlab.gradcam.heatmaps bound to a model)."""
    indices = np.asarray(indices, dtype=int)
    predicted = probabilities[indices].argmax(axis=1)
    maps = explain(np.concatenate([indices, indices]), np.concatenate([predicted, labels[indices]]))
    return {"predicted": maps[: len(indices)], "true": maps[len(indices) :]}


def plot_explained_predictions(images, labels, probabilities, names, indices, title, heatmaps):
    pairs = min(4, math.ceil(math.sqrt(len(indices))))
    figure, axes = image_grid(2 * len(indices), columns=2 * pairs, title_lines=3)  # the third: the xlabel
    for number, index in enumerate(indices):
        guess, actual = probabilities[index].argmax(), labels[index]
        left, right = axes[2 * number], axes[2 * number + 1]
        overlay_heatmap(left, images[index], heatmaps["predicted"][number])
        title_prediction(left, index, labels, probabilities, names)
        left.set_xlabel(f"where it saw {names[guess]}", fontsize=8)
        if guess != actual:
            overlay_heatmap(right, images[index], heatmaps["true"][number])
            right.set_title(f"#{index} Grad-CAM of\nthe true class", fontsize=9)
            right.set_xlabel(f"where it saw {names[actual]}", fontsize=8)
        else:
            show_image(right, images[index])
            right.set_title(f"#{index}\nthe image", fontsize=9)
    figure.suptitle(f"{title}; Grad-CAM heatmaps (red: most evidence)")
    return figure


def overlay_heatmap(ax, image, heatmap, alpha=0.45):
    """A raw 0-255 image with a [0, 1] heatmap of its size laid over it (jet colours), no ticks."""
    show_image(ax, image)
    ax.imshow(heatmap, cmap="jet", vmin=0, vmax=1, alpha=alpha, interpolation="bilinear")


def wrong_predictions(labels, probabilities):
    """Indices of the misclassified images, most confident (highest predicted probability) first."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")]


def plot_mistakes(images, labels, probabilities, names, limit, explain=None):
    """The `limit` most confidently wrong test images; with `explain` (see `explanations`),
    each beside the Grad-CAM heatmaps of its predicted and its true class."""
    wrong = wrong_predictions(labels, probabilities)
    if len(wrong) == 0:
        return empty_figure("No misclassified test images")
    shown = wrong[:limit]
    return plot_predictions(
        images,
        labels,
        probabilities,
        names,
        shown,
        f"The {len(shown)} most confident mistakes ({len(wrong)} wrong of {len(labels)})",
        explanations(explain, labels, probabilities, shown) if explain else None,
    )


def confused_pairs(confusion, limit):
    """The `limit` class pairs most often mistaken for each other (either direction).

    Returns [(class a, class b, a predicted as b, b predicted as a)], most errors first.
    """
    square = confusion.to_numpy()[:, : len(confusion)]
    both_ways = np.triu(square + square.T, k=1)
    rows, columns = np.unravel_index(np.argsort(-both_ways, axis=None, kind="stable"), both_ways.shape)
    pairs = [(a, b) for a, b in zip(rows, columns) if both_ways[a, b] > 0][:limit]
    return [(int(a), int(b), int(square[a, b]), int(square[b, a])) for a, b in pairs]


def plot_confused_pairs(images, labels, probabilities, classes, pairs, examples=PAIR_EXAMPLES):
    """One row per confused pair (a, b): up to `examples` images of a taken for b, then of b taken for a."""
    if not pairs:
        return empty_figure("No confused class pairs: every test image is classified correctly")
    predicted = probabilities.argmax(axis=1)
    examples_per_pair = [
        [
            (index, actual, guess)
            for actual, guess in ((a, b), (b, a))
            for index in np.flatnonzero((labels == actual) & (predicted == guess))[:examples]
        ]
        for a, b, _, _ in pairs
    ]
    figure, axes = fixed_grid(len(pairs), max(map(len, examples_per_pair)), PANEL_INCHES, title_lines=2)
    for row, (a, b, a_as_b, b_as_a), shown in zip(axes, pairs, examples_per_pair):
        for ax, (index, actual, guess) in zip(row, shown):
            show_image(ax, images[index])
            ax.set_title(
                f"#{index} {classes[actual]}\n→ {classes[guess]} ({probabilities[index, guess]:.2f})", fontsize=9
            )
        for ax in row[len(shown) :]:
            ax.set_axis_off()
        row[0].set_ylabel(
            f"{classes[a]} ↔ {classes[b]}\n{a_as_b} + {b_as_a} errors", fontsize=10, rotation=0, ha="right", va="center"
        )
    figure.suptitle("Most confused class pairs (true class → predicted class)")
    return figure
