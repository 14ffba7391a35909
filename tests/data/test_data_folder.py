"""Folder-per-class datasets: layouts, archives, image modes and sizes, unreadable files."""

import zipfile

import numpy as np
import pytest
from PIL import Image

from cnnlab.data.images import read_image
from cnnlab.data.preparation import prepare
from cnnlab.errors import DataError
from data_helpers import assert_nothing_written, data_params, load_split, make_tar, write_class_folders, write_image


def folder_params(source, **overrides):
    return data_params(dataset="folder", source=str(source), **overrides)


def test_unsplit_folder_is_split_by_test_fraction(tmp_path):
    root = write_class_folders(tmp_path / "shapes", {"circle": 20, "square": 30, "star": 10})
    card = prepare(
        folder_params(root, image_size=None, test_fraction=0.2, val_fraction=0.25), tmp_path / "out", tmp_path / "dl"
    )
    assert card["name"] == "shapes" and card["classes"] == ["circle", "square", "star"]
    assert card["class_counts"] == {"train": [12, 18, 6], "val": [4, 6, 2], "test": [4, 6, 2]}
    assert card["shape"] == [10, 12, 3]  # native size: 12 wide, 10 high
    assert card["source"] == str(root) and card["checksum"] == {}
    x, y = load_split(tmp_path / "out", "train")
    # each class is one solid colour, so every image shows its label's colour
    assert all(x[i, 0, 0, 0] == 20 * label for i, label in enumerate(y))


def test_train_and_test_folders_are_the_split_and_images_keep_source_order(tmp_path):
    root = tmp_path / "data"
    write_class_folders(root / "train", {"cat": 6, "dog": 4})
    write_class_folders(root / "test", {"cat": 2, "dog": 3})
    write_image(root / "train" / "cat" / "nested" / "deep.png", color=(1, 2, 3))
    card = prepare(folder_params(root, image_size=[5, 5], val_fraction=0), tmp_path / "out", tmp_path / "dl")
    assert card["counts"] == {"train": 11, "val": 0, "test": 5}
    assert card["class_counts"]["test"] == [2, 3]
    x, y = load_split(tmp_path / "out", "train")
    assert y.tolist() == [0] * 7 + [1] * 4
    assert x[6, 2, 2].tolist() == [1, 2, 3]  # cat/nested/deep.png sorts after cat/005.png


def test_archives_and_the_folder_give_identical_arrays(tmp_path):
    root = tmp_path / "pets"
    write_class_folders(root / "train", {"cat": 8, "dog": 8}, size=(9, 7), suffix=".jpg")
    write_class_folders(root / "test", {"cat": 3, "dog": 3}, size=(9, 7), suffix=".jpg")
    tar = make_tar(root, tmp_path / "pets.tar.gz")  # members under one wrapping folder, pets/
    zip_path = tmp_path / "pets.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in sorted(root.rglob("*.jpg")):
            archive.write(path, path.relative_to(root).as_posix())
    outputs = {}
    for source in (root, tar, zip_path):
        out = tmp_path / f"out-{source.name}"
        card = prepare(folder_params(source, image_size=[6, 6]), out, tmp_path / "dl")
        assert card["counts"] == {"train": 14, "val": 2, "test": 6}
        outputs[source.name] = [load_split(out, split) for split in ("train", "val", "test")]
    for name in ("pets.tar.gz", "pets.zip"):
        for (x, y), (x0, y0) in zip(outputs[name], outputs["pets"]):
            assert np.array_equal(x, x0) and np.array_equal(y, y0)
    assert card["name"] == "pets" and len(card["checksum"]["sha256"]) == 64


def test_modes_sizes_and_alpha_are_converted(tmp_path):
    train = tmp_path / "mixed" / "train"
    write_image(train / "a" / "1_gray.png", (30, 20), "L", 77)
    rgba = Image.new("RGBA", (16, 16), (255, 0, 0, 0))  # fully transparent red
    rgba.save(_mkdir(train / "a") / "2_rgba.png")
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    palette.save(train / "a" / "3_palette.png", transparency=0)  # index 1 (blue) is opaque
    write_image(train / "a" / "4_big.jpg", (1200, 900), "RGB", (10, 200, 10))
    Image.fromarray(np.full((6, 6), 0x8000, dtype=np.uint16)).save(_mkdir(train / "b") / "5_sixteen_bit.png")
    write_image(train / "b" / "6.bmp", (5, 5), "RGB", (1, 2, 3))
    write_image(train / "b" / "7.gif", (5, 5), "RGB", (255, 255, 255))
    write_image(train / "b" / "8.webp", (40, 40), "RGB", (0, 0, 250), fmt="WEBP")
    write_image(train / "b" / "9_cmyk.jpg", (5, 5), "CMYK", (0, 0, 0, 0))
    write_class_folders(tmp_path / "mixed" / "test", {"a": 1, "b": 1})

    card = prepare(
        folder_params(tmp_path / "mixed", image_size=[4, 4], val_fraction=0), tmp_path / "rgb", tmp_path / "dl"
    )
    x, _ = load_split(tmp_path / "rgb", "train")
    assert card["shape"] == [4, 4, 3] and x.shape == (9, 4, 4, 3)
    center = x[:, 2, 2].tolist()
    assert center[0] == [77, 77, 77]  # gray replicated
    assert center[1] == [255, 255, 255]  # transparent pixels composited on white
    assert center[2] == [0, 0, 255]  # opaque palette entry
    assert np.allclose(center[3], [10, 200, 10], atol=3)  # big JPEG, shrunk
    assert center[4] == [128, 128, 128]  # 16-bit 0x8000 -> 8-bit 128
    assert center[5] == [1, 2, 3] and center[6] == [255, 255, 255]
    assert np.allclose(center[7], [0, 0, 250], atol=8)
    assert center[8] == [255, 255, 255]  # CMYK with no ink is white
    # predict's reader gives a new file exactly the preprocessing the training images got
    assert np.array_equal(read_image(train / "a" / "4_big.jpg", card["shape"]), x[3])
    assert np.array_equal(read_image(train / "a" / "2_rgba.png", card["shape"]), x[1])

    card = prepare(
        folder_params(tmp_path / "mixed", image_size=[4, 4], channels=1, val_fraction=0),
        tmp_path / "gray",
        tmp_path / "dl",
    )
    x, _ = load_split(tmp_path / "gray", "train")
    assert card["shape"] == [4, 4, 1] and x[0, 2, 2, 0] == 77 and x[5, 2, 2, 0] == 2  # ITU-R 601 luma of (1,2,3)


def _mkdir(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_native_channels_follow_the_images(tmp_path):
    gray = tmp_path / "gray"
    for label in ("x", "y"):
        for i in range(5):
            write_image(gray / label / f"{i}.png", (6, 6), "L", 10 * i)
    card = prepare(folder_params(gray, image_size=None, val_fraction=0), tmp_path / "out1", tmp_path / "dl")
    assert card["shape"] == [6, 6, 1]
    write_image(gray / "y" / "color.png", (6, 6), "RGB", (9, 8, 7))
    card = prepare(folder_params(gray, image_size=None, val_fraction=0), tmp_path / "out2", tmp_path / "dl")
    assert card["shape"] == [6, 6, 3]


def test_differing_sizes_need_image_size(tmp_path):
    root = write_class_folders(tmp_path / "sizes", {"a": 3, "b": 3}, size=(8, 8))
    write_image(root / "b" / "wide.png", (16, 8))
    with pytest.raises(DataError, match=r"images differ in size \(.*is 8x8, .*wide\.png is 8x16.*set data\.image_size"):
        prepare(
            folder_params(root, image_size=None, test_fraction=0.3, val_fraction=0), tmp_path / "out", tmp_path / "dl"
        )
    assert_nothing_written(tmp_path / "out")


def _with_bad_files(tmp_path):
    root = write_class_folders(tmp_path / "imgs", {"a": 10, "b": 10})
    (root / "a" / "empty.jpg").write_bytes(b"")
    (root / "b" / "notes.jpg").write_text("this is not a JPEG")
    (root / "b" / "README.txt").write_text("about the images")
    (root / "b" / ".DS_Store").write_bytes(b"\0\0")  # hidden files are not dataset files at all
    return root


def test_unreadable_files_are_skipped_with_one_warning(tmp_path, capsys):
    root = _with_bad_files(tmp_path)
    card = prepare(folder_params(root, test_fraction=0.2, val_fraction=0), tmp_path / "out", tmp_path / "dl")
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert warnings[0].startswith("warning: skipped 3 files that are not readable images: ")
    for name in ("a/empty.jpg", "b/README.txt", "b/notes.jpg"):
        assert f"{root}/{name}" in warnings[0]
    assert sum(card["counts"].values()) == 20


def test_strict_turns_unreadable_files_into_an_error(tmp_path):
    root = _with_bad_files(tmp_path)
    with pytest.raises(DataError, match=r"^3 files are not readable images: .*empty\.jpg.*set data\.strict: false"):
        prepare(folder_params(root, strict=True), tmp_path / "out", tmp_path / "dl")
    assert_nothing_written(tmp_path / "out")


def test_strict_also_catches_files_that_fail_to_decode(tmp_path):
    root = write_class_folders(tmp_path / "imgs", {"a": 5, "b": 5})
    (root / "a" / "003.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataError, match=r"^1 files are not readable images: .*a/003\.png"):
        prepare(folder_params(root, strict=True, test_fraction=0.2, val_fraction=0), tmp_path / "out", tmp_path / "dl")
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize("content", [None, b""], ids=["no files", "only an empty file"])
def test_empty_class_folder_is_an_error(tmp_path, content):
    root = write_class_folders(tmp_path / "imgs", {"a": 5, "b": 5})
    (root / "c").mkdir()
    if content is not None:
        (root / "c" / "x.jpg").write_bytes(content)
    with pytest.raises(DataError, match=rf"^{root}/c: class folder holds no images; add images or remove the folder$"):
        prepare(folder_params(root), tmp_path / "out", tmp_path / "dl")
    assert_nothing_written(tmp_path / "out")


def test_one_class_is_an_error(tmp_path):
    root = write_class_folders(tmp_path / "imgs", {"only": 5})
    (root / "stray.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"only one class folder \(only\); a classifier needs at least two classes"):
        prepare(folder_params(root), tmp_path / "out", tmp_path / "dl")
    assert_nothing_written(tmp_path / "out")


def test_test_class_missing_from_train_is_an_error(tmp_path):
    write_class_folders(tmp_path / "d" / "train", {"a": 3, "b": 3})
    write_class_folders(tmp_path / "d" / "test", {"a": 1, "z": 1})
    with pytest.raises(DataError, match=r"test/z: class 'z' has no folder in train/"):
        prepare(folder_params(tmp_path / "d"), tmp_path / "out", tmp_path / "dl")


def test_extra_folders_beside_train_and_test_are_reported(tmp_path, capsys):
    write_class_folders(tmp_path / "d" / "train", {"a": 10, "b": 10})
    write_class_folders(tmp_path / "d" / "test", {"a": 2, "b": 2})
    write_class_folders(tmp_path / "d" / "val", {"a": 2, "b": 2})
    prepare(folder_params(tmp_path / "d"), tmp_path / "out", tmp_path / "dl")
    assert capsys.readouterr().err == (
        f"warning: {tmp_path}/d: ignoring val beside train/ and test/ (the validation split is carved from train/)\n"
    )


def test_folder_needs_a_source(tmp_path):
    with pytest.raises(Exception, match=r"^data\.source: the folder dataset needs data\.source"):
        prepare(data_params(dataset="folder"), tmp_path / "out", tmp_path / "dl")


def test_missing_source_is_named(tmp_path):
    with pytest.raises(DataError, match=rf"^data\.source: {tmp_path}/nope does not exist"):
        prepare(folder_params(tmp_path / "nope"), tmp_path / "out", tmp_path / "dl")
