"""Archives given as data.source: unsafe members, damage, checksums; never a half-written output."""

import hashlib
import io
import tarfile
import zipfile

import pytest

from cnnlab.data.archives import ZipTree
from cnnlab.data.preparation import prepare
from cnnlab.errors import ConfigError, DataError
from data_helpers import assert_nothing_written, data_params, make_tar, write_class_folders


def good_tree(tmp_path):
    return write_class_folders(tmp_path / "imgs", {"a": 10, "b": 10})


def tar_with_member(tmp_path, member, data=b"x"):
    """A valid image tree plus one extra member `member` (a TarInfo)."""
    archive = make_tar(good_tree(tmp_path), tmp_path / "bad.tar.gz", arcname="imgs")
    with tarfile.open(archive) as source:
        members = [(info, source.extractfile(info).read() if info.isfile() else None) for info in source]
    with tarfile.open(archive, "w:gz") as tar:
        for info, content in members:
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return archive


def tar_info(name, kind=tarfile.REGTYPE, linkname="", size=1):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, linkname, size if kind == tarfile.REGTYPE else 0
    return info


def run(tmp_path, source, **overrides):
    return prepare(data_params(dataset="folder", source=str(source), **overrides), tmp_path / "out", tmp_path / "dl")


@pytest.mark.parametrize(
    "member, reason",
    [
        (tar_info("../evil.png"), "would be written outside the archive's folder"),
        (tar_info("imgs/a/../../../evil.png"), "would be written outside the archive's folder"),
        (tar_info("/etc/evil.png"), "has an absolute path"),
        (tar_info("imgs/a/link.png", tarfile.SYMTYPE, "../../../etc/passwd"), "is a link pointing outside"),
        (tar_info("imgs/a/abs.png", tarfile.SYMTYPE, "/etc/passwd"), "is a link to an absolute path"),
        (tar_info("imgs/a/hard.png", tarfile.LNKTYPE, "../outside.png"), "is a link pointing outside"),
    ],
    ids=["dotdot", "nested dotdot", "absolute", "symlink out", "absolute symlink", "hardlink out"],
)
def test_tar_members_escaping_the_archive_are_rejected(tmp_path, member, reason):
    archive = tar_with_member(tmp_path, member)
    with pytest.raises(DataError) as error:
        run(tmp_path, archive)
    message = str(error.value)
    assert message.startswith(f"{archive}: member {member.name!r} {reason}")
    assert "\n" not in message
    assert_nothing_written(tmp_path / "out")


def test_a_link_that_stays_inside_is_skipped_like_any_unreadable_file(tmp_path, capsys):
    archive = tar_with_member(tmp_path, tar_info("imgs/a/alias.png", tarfile.SYMTYPE, "000.png"))
    card = run(tmp_path, archive, test_fraction=0.2)
    assert sum(card["counts"].values()) == 20
    assert f"{archive}/imgs/a/alias.png" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, reason",
    [
        ("../evil.png", "would be written outside"),
        ("/abs/evil.png", "has an absolute path"),
        ("C:/evil.png", "has an absolute path"),
    ],
)
def test_zip_members_escaping_the_archive_are_rejected(tmp_path, name, reason):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zip_file:
        for path in sorted(good_tree(tmp_path).rglob("*.png")):
            zip_file.write(path, path.relative_to(tmp_path).as_posix())
        zip_file.writestr(zipfile.ZipInfo(name), b"x")
    with pytest.raises(DataError, match=rf"^{archive}: member '{name}' {reason}"):
        run(tmp_path, archive)
    assert_nothing_written(tmp_path / "out")


def test_zip_symlinks_are_rejected(tmp_path):
    archive = tmp_path / "link.zip"
    link = zipfile.ZipInfo("imgs/a/link.png")
    link.external_attr = 0o120777 << 16
    with zipfile.ZipFile(archive, "w") as zip_file:
        zip_file.writestr(link, "../../../etc/passwd")
    with pytest.raises(DataError, match=rf"^{archive}: member 'imgs/a/link.png' is a symbolic link"):
        run(tmp_path, archive)


def test_truncated_tar_gz(tmp_path):
    archive = make_tar(good_tree(tmp_path), tmp_path / "imgs.tar.gz")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=rf"^{archive}: truncated or corrupt archive \(.*\); download it again"):
        run(tmp_path, archive)
    assert_nothing_written(tmp_path / "out")


@pytest.mark.parametrize("damage", ["cut", "flipped"])
def test_corrupt_zip(tmp_path, damage):
    archive = tmp_path / "imgs.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zip_file:
        for path in sorted(good_tree(tmp_path).rglob("*.png")):
            zip_file.write(path, path.relative_to(tmp_path).as_posix())
    data = bytearray(archive.read_bytes())
    if damage == "cut":
        data = data[: len(data) - 40]  # the central directory is gone
    else:
        data[60] ^= 0xFF  # inside the first member's compressed data
    archive.write_bytes(bytes(data))
    with pytest.raises(DataError, match=rf"^{archive}: truncated or corrupt archive"):
        run(tmp_path, archive)
    assert_nothing_written(tmp_path / "out")


def test_a_file_that_is_no_archive(tmp_path):
    source = tmp_path / "photos.rar"
    source.write_bytes(b"Rar!\x1a\x07\x00 not really")
    with pytest.raises(DataError, match=rf"^{source}: neither a folder nor a \.tar\.gz/\.tgz/\.tar/\.zip archive"):
        run(tmp_path, source)


def test_checksum_of_a_local_archive(tmp_path):
    archive = make_tar(good_tree(tmp_path), tmp_path / "imgs.tar.gz")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    card = run(tmp_path, archive, checksum=f"sha256:{digest}", test_fraction=0.2)
    assert card["checksum"] == {"sha256": digest}
    wrong = "0" * 32
    mismatch = rf"^{archive}: checksum mismatch, expected md5:{wrong}, got md5:[0-9a-f]{{32}}"
    with pytest.raises(DataError, match=mismatch):
        prepare(
            data_params(dataset="folder", source=str(archive), checksum=f"md5:{wrong}"),
            tmp_path / "out2",
            tmp_path / "dl",
        )
    assert_nothing_written(tmp_path / "out2")


@pytest.mark.parametrize("checksum", ["sha1:abc", "md5:xyz", "sha256:" + "a" * 63])
def test_malformed_checksum_is_a_config_error(tmp_path, checksum):
    archive = make_tar(good_tree(tmp_path), tmp_path / "imgs.tar.gz")
    expected = r"^data\.checksum: .* is not 'sha256:<64 hex digits>' or 'md5:<32 hex digits>'"
    with pytest.raises(ConfigError, match=expected):
        run(tmp_path, archive, checksum=checksum)


def test_checksum_of_a_folder_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"^data\.checksum: data\.source .* is a folder"):
        run(tmp_path, good_tree(tmp_path), checksum="md5:" + "0" * 32)


def test_folders_are_known_even_when_the_archive_lists_only_some(tmp_path):
    archive = tmp_path / "sparse.zip"
    with zipfile.ZipFile(archive, "w") as zip_file:
        zip_file.writestr(zipfile.ZipInfo("top/train/"), b"")  # a folder entry whose parent is not listed
        for path in sorted(good_tree(tmp_path).rglob("*.png")):
            zip_file.write(path, f"top/train/{path.relative_to(tmp_path / 'imgs').as_posix()}")
    tree = ZipTree(archive)
    assert tree.dirs == {"top", "top/train", "top/train/a", "top/train/b"}
    assert len(tree.files) == 20


def test_empty_class_folder_inside_an_archive(tmp_path):
    root = good_tree(tmp_path)
    (root / "c").mkdir()
    archive = make_tar(root, tmp_path / "imgs.tar.gz")
    with pytest.raises(DataError, match=rf"^{archive}/imgs/c: class folder holds no images"):
        run(tmp_path, archive)
