"""Build a variant's Keras model: preprocessing (normalization, augmentation) + architecture.

The model takes raw 0-255 pixels, so the saved inference model carries its own
preprocessing and `predict` only has to resize images.
"""

import math

import keras

from cnnlab.models import families
from cnnlab.models.layers import build_layers


def normalization_layer(card, dtype=None):
    """Scale to [0, 1], or standardize with the training split's per-channel mean/std."""
    if card["normalization"] == "standardize":
        variance = [s * s for s in card["std"]]
        return keras.layers.Normalization(mean=card["mean"], variance=variance, dtype=dtype, name="standardize")
    return keras.layers.Rescaling(1.0 / 255, dtype=dtype, name="scale")


# Each random layer draws from its own seed: layers given one seed draw the same numbers, so a
# +15 degree rotation would always come with the largest zoom and shift.
AUGMENTATION_SEED_OFFSETS = {
    "random_crop": 0,
    "random_flip": 1,
    "random_rotation": 2,
    "random_shift": 3,
    "random_zoom": 4,
}


def augmentation_layers(augmentation, image_size, seed, crop_flip_in_pipeline=False):
    """Keras preprocessing layers: active in training only, identity at inference.

    With `crop_flip_in_pipeline`, pad-and-crop and the flip are left to the tf.data input
    pipeline (cnnlab.input_pipeline.batch_augmentation, measured cheaper there); they come first
    here too, so the order of the augmentations is the same either way.
    """
    steps = []
    if augmentation["crop_padding"] and not crop_flip_in_pipeline:
        # pad-and-crop = a random shift of up to `crop_padding` pixels with zeros filling the
        # gap; RandomTranslation does it in place (RandomCrop would not undo padding at inference)
        height, width = image_size
        pad = augmentation["crop_padding"]
        steps.append(
            keras.layers.RandomTranslation(
                pad / height,
                pad / width,
                fill_mode=augmentation["crop_fill"],
                interpolation="nearest",
                seed=seed + AUGMENTATION_SEED_OFFSETS["random_crop"],
                name="random_crop",
            )
        )
    if augmentation["horizontal_flip"] and not crop_flip_in_pipeline:
        steps.append(
            keras.layers.RandomFlip(
                "horizontal", seed=seed + AUGMENTATION_SEED_OFFSETS["random_flip"], name="random_flip"
            )
        )
    if augmentation["rotation"]:
        steps.append(
            keras.layers.RandomRotation(
                augmentation["rotation"] / 360,
                fill_mode="nearest",
                seed=seed + AUGMENTATION_SEED_OFFSETS["random_rotation"],
                name="random_rotation",
            )
        )
    if augmentation["width_shift"] or augmentation["height_shift"]:
        steps.append(
            keras.layers.RandomTranslation(
                augmentation["height_shift"],
                augmentation["width_shift"],
                fill_mode="nearest",
                seed=seed + AUGMENTATION_SEED_OFFSETS["random_shift"],
                name="random_shift",
            )
        )
    if augmentation["zoom"]:
        steps.append(
            keras.layers.RandomZoom(
                augmentation["zoom"],
                fill_mode="nearest",
                seed=seed + AUGMENTATION_SEED_OFFSETS["random_zoom"],
                name="random_zoom",
            )
        )
    return steps


def build_architecture(variant, inputs, num_classes, key):
    """The variant's layers or family applied to `inputs`; a list of outputs, main head first."""
    if variant["family"] == "layers":
        return [build_layers(variant["layers"], inputs, num_classes, f"{key}.layers")]
    return families.build_family(variant["family"], variant["options"], inputs, num_classes, key=f"{key}.options")


def build_model(variant, card, key, seed=0, crop_flip_in_pipeline=False):
    """Return (training model, inference model); they share weights.

    The training model has every output (auxiliary heads included); the inference model
    only the main head.
    """
    raw = keras.Input(shape=tuple(card["shape"]), name="image")
    x = normalization_layer(card)(raw)
    for layer in augmentation_layers(variant["augmentation"], card["shape"][:2], seed, crop_flip_in_pipeline):
        x = layer(x)
    outputs = build_architecture(variant, x, card["num_classes"], key)
    training_model = keras.Model(raw, outputs if len(outputs) > 1 else outputs[0], name=key.split(".")[-1])
    inference_model = keras.Model(raw, outputs[0], name=key.split(".")[-1])
    return training_model, inference_model


def initialize_from_data(model, variant, card, images, seed):
    """Set the weights a family derives from the training images (raw pixels, normalized here as
    the model normalizes them); nothing for layer lists and the families without such weights."""
    if variant["family"] == "layers":
        return
    layer = normalization_layer(card, dtype="float32")  # full precision under mixed precision too

    def normalize(batch):
        return keras.ops.convert_to_numpy(layer(batch.astype("float32")))

    families.initialize_from_data(variant["family"], variant["options"], model, images, normalize, seed)


def training_callbacks(variant):
    if variant["family"] == "layers":
        return []
    return families.training_callbacks(variant["family"], variant["options"])


def loss_weights(variant, num_outputs):
    if num_outputs == 1:
        return None
    return families.loss_weights(variant["family"], num_outputs)


def layer_table(model):
    """Layers with output shapes and parameter counts (nested models flattened)."""
    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            rows.extend(layer_table(layer))
            continue
        if isinstance(layer, keras.layers.InputLayer):
            continue
        shape = layer.output.shape if hasattr(layer, "output") else None
        rows.append(
            {
                "name": layer.name,
                "type": type(layer).__name__,
                "output_shape": list(shape[1:]) if shape is not None else None,
                "params": int(layer.count_params()) if layer.built else 0,
            }
        )
    return rows


def count_flops(model):
    """Forward-pass multiply-adds x2 per image of conv and dense layers (training costs about 3x)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_flops(layer)
        elif isinstance(layer, keras.layers.Conv2D):
            out_h, out_w, out_c = layer.output.shape[1:]
            kernel_h, kernel_w = layer.kernel_size
            in_c = layer.input.shape[-1] // (layer.groups or 1)
            total += 2 * out_h * out_w * out_c * kernel_h * kernel_w * in_c
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * math.prod(layer.kernel.shape)
    return int(total)
