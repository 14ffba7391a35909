"""Folder-per-class image collections, from a folder, an archive of one, or an http(s) URL of an archive.

Layouts, possibly under one wrapping folder: `<class>/<images>` (a test split is carved out
later), or `train/<class>/...` and `test/<class>/...` (the dataset's own split). Class names
are the sorted class folder names; images are found at any depth inside a class folder.
"""
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from cnnlab.data.archives import extract
from cnnlab.data.checksums import file_digest
from cnnlab.data.collection import Collection
from cnnlab.data.images import IMAGE_SUFFIXES, decode_files
from cnnlab.data.notices import listing, warn
from cnnlab.data.sources import expected_checksum, fetch_source
from cnnlab.errors import ConfigError, DataError

SPLIT_FOLDERS = ("train", "test")


def read_folder(data_params, download_dir, scratch, spec):
    source = data_params.get("source")
    if source is None:
        raise ConfigError("data.source: the folder dataset needs data.source, a folder of class folders, "
                          "a .tar.gz/.tgz/.tar/.zip archive of one, or an http(s) URL of such an archive")
    expected = expected_checksum(data_params)
    path = fetch_source(source, download_dir, expected)
    if path.is_dir():
        base, checksum = path, {}
    else:
        base = Path(scratch) / "extracted"
        extract(path, base)
        checksum = expected.as_record() if expected else {"sha256": file_digest(path)}
    return _FolderListing(base, source).collection(_dataset_name(source), checksum, spec)


def _dataset_name(source):
    name = Path(urlsplit(str(source)).path.rstrip("/")).name
    return re.sub(r"(\.tar\.gz|\.tgz|\.tar\.bz2|\.tbz2|\.tar\.xz|\.txz|\.tar|\.zip)$", "", name, flags=re.I) or "folder"


def _visible(folder):
    return sorted(entry for entry in folder.iterdir() if not entry.name.startswith(".") and entry.name != "__MACOSX")


class _FolderListing:
    """Every image file of the dataset with its class, before any pixel is read."""

    def __init__(self, base, source):
        self.base, self.source = base, source
        self.paths, self.labels, self.in_test, self.skipped = [], [], [], []
        root = self._unwrap(base)
        if all((root / name).is_dir() for name in SPLIT_FOLDERS):
            self._warn_extra_folders(root)
            self.classes = self._class_names(root / "train")
            self._add_split(root / "train", in_test=False)
            self._add_split(root / "test", in_test=True)
        else:
            self.classes = self._class_names(root)
            self._add_split(root, in_test=False)

    def display(self, path):
        """How messages name a file: relative to data.source (inside the archive, for an archive)."""
        relative = Path(path).relative_to(self.base).as_posix()
        return f"{self.source.rstrip('/')}/{relative}" if relative != "." else self.source

    def collection(self, name, checksum, spec):
        paths = self.paths
        display_names = [self.display(path) for path in paths]
        has_test = any(self.in_test)

        def load(indices):
            x, kept, unreadable = decode_files([paths[i] for i in indices], spec, [display_names[i] for i in indices])
            self.skipped.extend(unreadable)
            return x, kept

        return Collection(name, self.classes, np.array(self.labels, dtype=np.int64),
                          np.array(self.in_test, dtype=bool) if has_test else None, load,
                          self.source, checksum, self.skipped)

    @staticmethod
    def _unwrap(folder):
        """Step into a lone wrapping folder (an archive of `flowers/` holding the class folders)."""
        while True:
            entries = _visible(folder)
            if len(entries) == 1 and entries[0].is_dir() and any(e.is_dir() for e in _visible(entries[0])):
                folder = entries[0]
            else:
                return folder

    def _subfolder_names(self, folder):
        names = [entry.name for entry in _visible(folder) if entry.is_dir()]
        if not names:
            raise DataError(f"{self.display(folder)}: no class folders found; expected <class>/<images> "
                            f"or train/<class>/ and test/<class>/")
        return names

    def _class_names(self, folder):
        names = self._subfolder_names(folder)
        if len(names) == 1:
            raise DataError(f"{self.display(folder)}: only one class folder ({names[0]}); "
                            f"a classifier needs at least two classes")
        return names

    def _add_split(self, folder, in_test):
        for name in self._subfolder_names(folder) if in_test else self.classes:
            if name not in self.classes:
                raise DataError(f"{self.display(folder / name)}: class {name!r} has no folder in train/; "
                                f"every test class needs training images")
            images = self._images(folder / name)
            self.paths += images
            self.labels += [self.classes.index(name)] * len(images)
            self.in_test += [in_test] * len(images)

    def _images(self, class_folder):
        images = []
        for folder, subfolders, files in os.walk(class_folder):
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            for file in sorted(name for name in files if not name.startswith(".")):
                path = Path(folder) / file
                if path.suffix.lower() in IMAGE_SUFFIXES and path.stat().st_size > 0:
                    images.append(path)
                else:
                    self.skipped.append(self.display(path))
        if not images:
            raise DataError(f"{self.display(class_folder)}: class folder holds no images; "
                            f"add images or remove the folder")
        return images

    def _warn_extra_folders(self, root):
        extra = [entry.name for entry in _visible(root) if entry.is_dir() and entry.name not in SPLIT_FOLDERS]
        if extra:
            warn(f"{self.display(root)}: ignoring {listing(extra)} beside train/ and test/ "
                 f"(the validation split is carved from train/)")
