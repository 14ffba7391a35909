"""Charts from the numbers: training curves, confusion matrices, per-class scores, comparison.

Every `plot_*` function returns a matplotlib Figure (built without pyplot, so no global
state and no display needed); `save_figure` writes it atomically as a PNG.
"""

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, FormatStrFormatter, FuncFormatter

from cnnlab.fileio import atomic_path

DPI = 100
WRONG_COLOR = "tab:red"
ANNOTATE_MAX_COLUMNS = 30


def save_figures(figures, directory, processes=2):
    """Save {relative path: Figure} as PNGs under `directory`.

    Drawing and PNG encoding are single-threaded, and a deep network has dozens of feature-map
    figures; so on Linux a pool of `processes - 1` forked workers saves their share alongside
    this process. Forking hands them the figures without pickling them; the workers only draw
    with matplotlib, never TensorFlow, which makes forking this multi-threaded process safe.
    Elsewhere (macOS frameworks are not fork-safe) the figures are saved in turn. A worker's
    exception is raised here.
    """
    items = sorted(figures.items())
    if sys.platform != "linux" or processes < 2 or len(items) < 2 * processes:
        _save_share(items, directory)
        return
    _FORKED["items"] = items  # read by the workers, forked at the first submit
    try:
        with ProcessPoolExecutor(processes - 1, mp_context=multiprocessing.get_context("fork")) as pool:
            shares = [pool.submit(_save_forked_share, worker, processes, directory) for worker in range(1, processes)]
            _save_share(items[::processes], directory)
            for share in shares:
                share.result()
    finally:
        _FORKED.clear()


_FORKED = {}


def _save_forked_share(worker, processes, directory):
    _save_share(_FORKED["items"][worker::processes], directory)


def _save_share(items, directory):
    for name, figure in items:
        save_figure(figure, Path(directory) / name)


def save_figure(figure, path):
    with atomic_path(path) as tmp:
        # zlib level 3 instead of 6: 15-20 % faster to save, 20 % larger files
        figure.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight", pil_kwargs={"compress_level": 3})
    return Path(path)


def show_image(ax, image):
    """Draw a raw 0-255 image in its own colours (grayscale with a gray colormap), no ticks."""
    draw_image(ax, image)
    ax.set_xticks([])
    ax.set_yticks([])


def draw_image(ax, image, extent=None):
    """A raw 0-255 image in its own colours (grayscale with a gray colormap), at `extent` if given."""
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest", extent=extent)
    else:
        ax.imshow(image.astype(np.uint8), interpolation="nearest", extent=extent)


def mark_wrong(ax):
    for spine in ax.spines.values():
        spine.set_color(WRONG_COLOR)
        spine.set_linewidth(3)
    ax.title.set_color(WRONG_COLOR)


def plot_curves(history, best_epoch=None):
    """Accuracy and loss per epoch, train vs validation, the best epoch (1-based) marked."""
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, metric in zip(figure.subplots(1, 2), ("accuracy", "loss")):
        ax.plot(epochs, history[metric], marker="o", label="train")
        if history.get(f"val_{metric}"):
            ax.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        if best_epoch:
            ax.axvline(best_epoch, color="gray", linestyle="--", label=f"best epoch ({best_epoch})")
        ax.set(title=metric.capitalize(), xlabel="epoch", ylabel=metric)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend()
    figure.suptitle("Training curves")
    return figure


def most_confused_classes(confusion, limit):
    """Names of the `limit` classes with the most errors (as actual or predicted), in class order."""
    square = confusion.to_numpy()[:, : len(confusion)]
    off_diagonal = square - np.diag(np.diag(square))
    errors = off_diagonal.sum(axis=0) + off_diagonal.sum(axis=1)
    chosen = np.sort(np.argsort(-errors, kind="stable")[:limit])
    return list(confusion.index[chosen])


def plot_confusion(confusion, normalize=False, max_classes=20):
    """Confusion matrix (rows actual, columns predicted); counts or row-normalized shares.

    With more than `max_classes` classes only the most confused ones are drawn; shares stay
    relative to each actual class's whole row.
    """
    values = confusion.div(confusion.sum(axis=1).clip(lower=1), axis=0) if normalize else confusion
    title = "Confusion matrix (share of each actual class)" if normalize else "Confusion matrix (counts)"
    if len(confusion) > max_classes:
        chosen = most_confused_classes(confusion, max_classes)
        extra = list(confusion.columns[len(confusion) :])
        values = values.loc[chosen, chosen + extra]
        title += f"\nthe {max_classes} most confused of {len(confusion)} classes"
    rows, columns = values.shape
    figure = Figure(figsize=(max(6, 0.55 * columns + 3), max(5, 0.55 * rows + 2)), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(values.to_numpy(), cmap="Blues", vmin=0, vmax=1 if normalize else None)
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(columns), values.columns, rotation=45, ha="right")
    ax.set_yticks(range(rows), values.index)
    ax.set(xlabel="predicted", ylabel="actual", title=title)
    if columns <= ANNOTATE_MAX_COLUMNS:
        annotate_cells(ax, values.to_numpy(), "{:.2f}" if normalize else "{:d}")
    return figure


def annotate_cells(ax, matrix, fmt):
    threshold = matrix.max() / 2
    for (row, column), value in np.ndenumerate(matrix):
        if value:
            ax.text(
                column,
                row,
                fmt.format(value),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if value > threshold else "black",
            )


def plot_per_class(per_class, max_classes=20):
    """Horizontal precision and recall bars per class (a per_class_frame); with many classes,
    the lowest-F1 ones."""
    scores = per_class.set_index("class")
    title = "Per-class precision and recall (test split)"
    if len(scores) > max_classes:
        scores = scores.nsmallest(max_classes, "f1")
        title += f"\nthe {max_classes} classes with the lowest F1 of {len(per_class)}"
    figure = Figure(figsize=(9, max(4, 0.45 * len(scores) + 1.5)), layout="constrained")
    ax = figure.subplots()
    positions = np.arange(len(scores))
    ax.barh(positions - 0.2, scores["precision"], height=0.4, label="precision")
    ax.barh(positions + 0.2, scores["recall"], height=0.4, label="recall")
    ax.set_yticks(positions, scores.index)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1.05), xlabel="score", title=title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right")
    return figure


def plot_comparison(frame):
    """Test accuracy against parameter count and against training time, points labelled."""
    figure = Figure(figsize=(13, 5), layout="constrained")
    panels = (
        ("params", "parameters", EngFormatter()),
        ("train_seconds", "training time (s)", FormatStrFormatter("%g")),
    )
    for ax, (column, label, formatter) in zip(figure.subplots(1, 2), panels):
        ax.scatter(frame[column], frame["test_accuracy"], s=40)
        ax.set(xscale="log", xlabel=f"{label}, log scale", ylabel="test accuracy", title=f"Test accuracy vs {label}")
        ax.xaxis.set_major_formatter(formatter)
        ax.xaxis.set_minor_formatter(label_twos_and_fives(formatter))
        ax.margins(0.15)
        ax.grid(alpha=0.3)
        label_points(ax, frame[column], frame["test_accuracy"], frame["variant"])
    return figure


LABEL_FONT_POINTS = 9
LABEL_LINE_POINTS = 11


def label_points(ax, xs, ys, names):
    """Name each point beside it, best first; a label that would cover one already placed moves
    down a line, with a thin line back to its point (15 variants crowd where they score alike).
    Positions are planned in typographic points, so this holds on log axes too."""
    ax.autoscale_view()
    to_points = ax.transData + ax.figure.dpi_scale_trans.inverted()
    placed = []  # (x, y, width) of the labels so far, in points
    for x, y, name in zip(xs, ys, names):
        px, py = to_points.transform((x, y)) * 72
        width = 0.6 * LABEL_FONT_POINTS * len(str(name))
        dy = 5
        while any(abs(px - qx) < max(width, qw) and abs(py + dy - qy) < LABEL_LINE_POINTS for qx, qy, qw in placed):
            dy -= LABEL_LINE_POINTS
        placed.append((px, py + dy, width))
        leader = None if dy == 5 else {"arrowstyle": "-", "color": "0.6", "linewidth": 0.6}
        ax.annotate(
            str(name),
            (x, y),
            textcoords="offset points",
            xytext=(5, dy),
            fontsize=LABEL_FONT_POINTS,
            va="bottom",
            arrowprops=leader,
        )


def label_twos_and_fives(formatter):
    """Minor log-axis tick labels at 2x and 5x each power of ten only (the rest stay blank)."""

    def label(value, position):
        mantissa = round(value / 10 ** np.floor(np.log10(value)))
        return formatter(value, position) if mantissa in (2, 5) else ""

    return FuncFormatter(label)
