"""Any image -> the uint8 H x W x C array the model takes (orientation, bit depth, alpha, mode, size).

`image_to_array` is the one conversion used for every dataset, and `read_image` (file -> model
input of the card's shape) is what `predict` should call, so new images get exactly the
preprocessing the training images got. Transparent pixels are composited on
white (how the image looks on a page), not dropped: a dropped alpha channel often reveals
arbitrary colours that were never meant to be seen.
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from cnnlab.errors import DataError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
RESAMPLE = Image.Resampling.LANCZOS  # antialiased when shrinking
WHITE = (255, 255, 255, 255)
GRAY_BANDS = frozenset({("1",), ("L",), ("I",), ("F",), ("L", "A")})


@dataclass(frozen=True)
class ImageSpec:
    """Target size (height, width) and channels (1 or 3); None keeps the dataset's own."""

    size: tuple | None
    channels: int | None

    @classmethod
    def from_params(cls, data_params):
        size = data_params.get("image_size")
        return cls(tuple(size) if size else None, data_params.get("channels"))


def image_to_array(image, size, channels):
    """A PIL image as uint8 (height, width, channels) with channels 1 (gray) or 3 (RGB)."""
    image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I;16"):
        image = Image.fromarray((np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        image = Image.alpha_composite(Image.new("RGBA", image.size, WHITE), image.convert("RGBA"))
    image = image.convert("L" if channels == 1 else "RGB")
    height, width = size
    if image.size != (width, height):
        image = image.resize((width, height), RESAMPLE)
    array = np.asarray(image, dtype=np.uint8)
    return array[:, :, np.newaxis] if channels == 1 else array


def convert_array(x, spec):
    """Bring a uint8 N x H x W x C batch to `spec`, image by image exactly as files are converted."""
    count, height, width, channels = x.shape
    size = spec.size or (height, width)
    target_channels = spec.channels or channels
    if size == (height, width) and target_channels == channels:
        return x
    out = np.empty((count, *size, target_channels), dtype=np.uint8)
    for i, pixels in enumerate(x):
        out[i] = image_to_array(Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels), size, target_channels)
    return out


def read_image(file, shape):
    """One image file (path or open file) as the uint8 array of the dataset card's `shape`, [H, W, C]."""
    height, width, channels = shape
    return load_image_file(file, ImageSpec((height, width), channels))[0]


def load_image_file(file, spec):
    """(array, was_gray) for one file (path or file object); with spec.channels None the image
    keeps 1 or 3 channels."""
    with Image.open(file) as image:
        if spec.size:
            side = max(spec.size)
            image.draft(None, (side, side))  # JPEG: decode at a reduced scale, much faster
        was_gray = image.getbands() in GRAY_BANDS
        channels = spec.channels or (1 if was_gray else 3)
        return image_to_array(image, spec.size or (image.height, image.width), channels), was_gray


def decode_images(files, count, spec):
    """Decode `count` images into one uint8 N x H x W x C array; returns (x, kept mask, unreadable names).

    `files` yields (position, name, path or file object) in any order. Unreadable images are
    left out (kept[position] False). With spec.channels None the array has one channel when every
    image is grayscale and three otherwise; with spec.size None all images must have one size.
    """
    results, names = [(None, False)] * count, [""] * count
    for position, name, file in files:
        results[position], names[position] = _try_load(file, spec), name
    kept = np.array([array is not None for array, _ in results], dtype=bool)
    unreadable = [name for name, ok in zip(names, kept) if not ok]
    arrays = [array for array, _ in results if array is not None]
    if not arrays:
        return np.empty((0, *(spec.size or (0, 0)), spec.channels or 3), np.uint8), kept, unreadable
    all_gray = all(gray for array, gray in results if array is not None)
    channels = spec.channels or (1 if all_gray else 3)
    height, width = spec.size or _common_size(arrays, [name for name, ok in zip(names, kept) if ok])
    x = np.empty((len(arrays), height, width, channels), dtype=np.uint8)
    for i, array in enumerate(arrays):
        x[i] = array  # a 1-channel image broadcasts to RGB exactly as Pillow's L -> RGB
    return x, kept, unreadable


def _common_size(arrays, names):
    first = arrays[0].shape[:2]
    for array, name in zip(arrays, names):
        if array.shape[:2] != first:
            raise DataError(
                f"images differ in size ({names[0]} is {first[0]}x{first[1]}, {name} is "
                f"{array.shape[0]}x{array.shape[1]}, height x width); "
                f"set data.image_size: [height, width] to resize them all"
            )
    return first


def _try_load(path, spec):
    try:
        return load_image_file(path, spec)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return None, False
