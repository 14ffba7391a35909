"""prepare() on scikit-learn's digits: card, splits, statistics, determinism, atomic output."""

import json

import numpy as np
import pytest
from sklearn.datasets import load_digits

from cnnlab.data.preparation import channel_stats, prepare
from cnnlab.data.splits import select_splits
from cnnlab.errors import ConfigError, DataError
from data_helpers import assert_nothing_written, data_params, load_split

DIGIT_CLASS_COUNTS = np.array([178, 182, 177, 183, 181, 182, 181, 179, 174, 180])


@pytest.fixture(scope="module")
def digits_prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "prepared"
    card = prepare(data_params(dataset="digits", image_size=None, normalization="standardize"), out, out.parent / "dl")
    return card, out


def test_digits_card_describes_the_written_arrays(digits_prepared):
    card, out = digits_prepared
    # 20 % test (ceil of 359.4), then 10 % of the remaining 1,437 for validation (ceil of 143.7)
    assert card["counts"] == {"train": 1293, "val": 144, "test": 360}
    assert card["classes"] == [str(d) for d in range(10)] and card["num_classes"] == 10
    assert card["shape"] == [8, 8, 1]
    assert card["source"] == "sklearn.datasets.load_digits"
    assert len(card["checksum"]["md5"]) == 32
    assert card["normalization"] == "standardize" and card["val_fraction"] == 0.1 and card["seed"] == 42
    assert json.loads((out / "card.json").read_text()) == card
    for split in ("train", "val", "test"):
        x, y = load_split(out, split)
        assert x.dtype == np.uint8 and y.dtype == np.int64
        assert x.shape == (card["counts"][split], 8, 8, 1)
        assert np.bincount(y, minlength=10).tolist() == card["class_counts"][split]


def test_digits_splits_are_stratified_and_partition_the_dataset(digits_prepared):
    card, out = digits_prepared
    total = sum(np.array(card["class_counts"][split]) for split in ("train", "val", "test"))
    assert total.tolist() == DIGIT_CLASS_COUNTS.tolist()
    # each class keeps its share of every split, to within one image
    assert np.all(np.abs(np.array(card["class_counts"]["test"]) - 0.2 * DIGIT_CLASS_COUNTS) <= 1)
    train_pool = DIGIT_CLASS_COUNTS - np.array(card["class_counts"]["test"])
    assert np.all(np.abs(np.array(card["class_counts"]["val"]) - 0.1 * train_pool) <= 1)
    # the three splits hold exactly the dataset's images, each once, pixel values scaled 0..16 -> 0..255
    digits = load_digits()
    expected = np.rint(digits.images * 255 / 16).astype(np.uint8).reshape(len(digits.images), -1)
    written = np.concatenate([load_split(out, split)[0].reshape(-1, 64) for split in ("train", "val", "test")])
    as_rows = lambda a: sorted(map(bytes, a))  # noqa: E731
    assert as_rows(written) == as_rows(expected)
    assert written.max() == 255 and written.min() == 0


def test_mean_and_std_come_from_the_training_split_only(digits_prepared):
    card, out = digits_prepared
    train_x = load_split(out, "train")[0].astype(np.float64)
    everything = np.concatenate([load_split(out, split)[0] for split in ("train", "val", "test")]).astype(np.float64)
    assert card["mean"] == pytest.approx([train_x.mean()], abs=1e-9)
    assert card["std"] == pytest.approx([train_x.std()], abs=1e-9)
    assert abs(card["mean"][0] - everything.mean()) > 1e-6


def test_channel_stats_by_hand():
    # channel 0 holds 0, 255, 255, 255; channel 1 is constant 7
    x = np.array([[[[0, 7], [255, 7]]], [[[255, 7], [255, 7]]]], dtype=np.uint8)
    mean, std = channel_stats(x)
    assert mean.tolist() == [191.25, 7.0]
    # squared deviations: 191.25^2 + 3 * 63.75^2 = 48768.75, over 4 values
    assert std == pytest.approx([np.sqrt(48768.75 / 4), 0.0])


def test_same_params_give_byte_identical_files(tmp_path):
    params = data_params(dataset="digits", image_size=[12, 12], channels=3, seed=7)
    prepare(params, tmp_path / "a", tmp_path / "dl")
    prepare(params, tmp_path / "b", tmp_path / "dl")
    for name in ("train.npz", "val.npz", "test.npz", "card.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    x, _ = load_split(tmp_path / "a", "train")
    assert x.shape[1:] == (12, 12, 3)
    assert np.array_equal(x[..., 0], x[..., 1]) and np.array_equal(x[..., 1], x[..., 2])  # gray -> RGB


def test_another_seed_chooses_other_images(tmp_path):
    first = prepare(data_params(dataset="digits", image_size=None, seed=1), tmp_path / "a", tmp_path / "dl")
    second = prepare(data_params(dataset="digits", image_size=None, seed=2), tmp_path / "b", tmp_path / "dl")
    assert first["counts"] == second["counts"]
    assert not np.array_equal(load_split(tmp_path / "a", "test")[0], load_split(tmp_path / "b", "test")[0])


def test_caps_and_zero_validation(tmp_path):
    card = prepare(
        data_params(dataset="digits", image_size=None, max_train=200, max_test=50, val_fraction=0),
        tmp_path / "out",
        tmp_path / "dl",
    )
    assert card["counts"] == {"train": 200, "val": 0, "test": 50}
    assert card["class_counts"]["train"] == [20] * 10 and card["class_counts"]["test"] == [5] * 10
    x, y = load_split(tmp_path / "out", "val")
    assert x.shape == (0, 8, 8, 1) and x.dtype == np.uint8 and y.shape == (0,) and y.dtype == np.int64


def test_select_splits_caps_before_carving_validation():
    labels = np.repeat(np.arange(3), 100)
    params = data_params(test_fraction=0.2, max_train=90, val_fraction=0.1, seed=3)
    splits = select_splits(labels, None, params)
    assert [len(splits[name]) for name in ("train", "val", "test")] == [81, 9, 60]
    assert np.bincount(labels[splits["val"]]).tolist() == [3, 3, 3]
    assert np.bincount(labels[splits["train"]]).tolist() == [27, 27, 27]
    chosen = np.concatenate(list(splits.values()))
    assert len(np.unique(chosen)) == len(chosen)
    assert all(np.all(np.diff(indices) > 0) for indices in splits.values())  # sorted: source order kept


def test_select_splits_keeps_an_official_test_split():
    labels = np.tile(np.arange(4), 50)
    is_test = np.arange(200) >= 160
    splits = select_splits(labels, is_test, data_params(val_fraction=0.25, max_test=20))
    assert set(splits["test"]) <= set(range(160, 200)) and len(splits["test"]) == 20
    assert len(splits["val"]) == 40 and len(splits["train"]) == 120


def test_impossible_stratified_split_names_the_key(tmp_path):
    params = data_params(dataset="digits", max_train=50, val_fraction=0.05)
    with pytest.raises(ConfigError, match=r"^data\.val_fraction: .*50 images of 10 classes.*change data\.val_fraction"):
        prepare(params, tmp_path / "out", tmp_path / "dl")
    assert_nothing_written(tmp_path / "out")


def test_digits_reject_a_source(tmp_path):
    with pytest.raises(ConfigError, match=r"^data\.source: digits ships with scikit-learn"):
        prepare(data_params(dataset="digits", source="x"), tmp_path / "out", tmp_path / "dl")


def test_a_failed_run_leaves_the_previous_output_intact(tmp_path):
    out = tmp_path / "prepared"
    prepare(data_params(dataset="digits", image_size=None), out, tmp_path / "dl")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    empty_class = tmp_path / "images" / "b"
    empty_class.mkdir(parents=True)
    (tmp_path / "images" / "a").mkdir()
    with pytest.raises(DataError):
        prepare(data_params(dataset="folder", source=str(tmp_path / "images")), out, tmp_path / "dl")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".prepared")] == []
