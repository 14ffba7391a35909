"""Folder-per-class image collections: a folder, an archive of one, or an http(s) URL of an archive.

Layouts, possibly under one wrapping folder: `<class>/<images>` (a test split is carved out
later), or `train/<class>/...` and `test/<class>/...` (the dataset's own split). Class names
are the sorted class folder names; images are found at any depth inside a class folder.
"""

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from cnnlab.data.archives import open_tree
from cnnlab.data.collection import Collection
from cnnlab.data.images import IMAGE_SUFFIXES, decode_images
from cnnlab.data.notices import listing, warn
from cnnlab.errors import ConfigError, DataError

SPLIT_FOLDERS = ("train", "test")
_ARCHIVE_SUFFIX = re.compile(r"(\.tar\.gz|\.tgz|\.tar\.bz2|\.tbz2|\.tar\.xz|\.txz|\.tar|\.zip)$", re.IGNORECASE)


def locate(data_params, fetcher):
    if data_params.get("source") is None:
        raise ConfigError(
            "data.source: the folder dataset needs data.source, a folder of class folders, "
            "a .tar.gz/.tgz/.tar/.zip archive of one, or an http(s) URL of such an archive"
        )
    return fetcher.source(data_params)


def read(source, spec):
    return FolderListing(open_tree(source.path), source.label).collection(
        _dataset_name(source.label), source.record(), spec
    )


def _parent(relative):
    return relative.rpartition("/")[0]


def _base_name(relative):
    return relative.rpartition("/")[2]


def _dataset_name(source):
    name = Path(urlsplit(str(source)).path.rstrip("/")).name
    return _ARCHIVE_SUFFIX.sub("", name) or "folder"


class FolderListing:
    """Every image file of the dataset with its class, before any pixel is read."""

    def __init__(self, tree, source):
        self.tree, self.source = tree, source
        self.names, self.labels, self.in_test, self.skipped = [], [], [], []
        self.sorted_files = sorted(tree.files)
        self.children = {}  # folder -> ([subfolders], [files]), all relative posix paths
        for folder in sorted(tree.dirs):
            self.children.setdefault(_parent(folder), ([], []))[0].append(folder)
        for file in self.sorted_files:
            self.children.setdefault(_parent(file), ([], []))[1].append(file)
        root = self._unwrap("")
        if all(self._join(root, name) in tree.dirs for name in SPLIT_FOLDERS):
            self._warn_extra_folders(root)
            self.classes = self._class_names(self._join(root, "train"))
            self._add_split(self._join(root, "train"), self.classes, in_test=False)
            self._add_split(self._join(root, "test"), self._subfolders(self._join(root, "test")), in_test=True)
        else:
            self.classes = self._class_names(root)
            self._add_split(root, self.classes, in_test=False)

    def collection(self, name, checksum, spec):
        def load(indices):
            wanted = [self.names[i] for i in indices]
            slot = {file: i for i, file in enumerate(wanted)}
            files = ((slot[file], self.display(file), opened) for file, opened in self.tree.read(wanted))
            x, kept, unreadable = decode_images(files, len(wanted), spec)
            self.skipped.extend(unreadable)
            return x, kept

        is_test = np.array(self.in_test, dtype=bool) if any(self.in_test) else None
        return Collection(
            name,
            self.classes,
            np.array(self.labels, dtype=np.int64),
            is_test,
            load,
            self.source,
            checksum,
            self.skipped,
        )

    def display(self, relative):
        """How messages name a file: data.source followed by the path inside it."""
        return f"{self.source.rstrip('/')}/{relative}" if relative else self.source

    @staticmethod
    def _join(folder, name):
        return f"{folder}/{name}" if folder else name

    def _children(self, folder):
        """(subfolders, files) directly inside `folder`, sorted."""
        return self.children.get(folder, ([], []))

    def _unwrap(self, folder):
        """Step into a lone wrapping folder (an archive of `flowers/` holding the class folders)."""
        while True:
            subfolders, files = self._children(folder)
            if len(subfolders) == 1 and not files and self._children(subfolders[0])[0]:
                folder = subfolders[0]
            else:
                return folder

    def _subfolders(self, folder):
        names = [_base_name(d) for d in self._children(folder)[0]]
        if not names:
            raise DataError(
                f"{self.display(folder)}: no class folders found; expected <class>/<images> "
                f"or train/<class>/ and test/<class>/"
            )
        return names

    def _class_names(self, folder):
        names = self._subfolders(folder)
        if len(names) == 1:
            raise DataError(
                f"{self.display(folder)}: only one class folder ({names[0]}); a classifier needs at least two classes"
            )
        return names

    def _add_split(self, folder, class_names, in_test):
        for name in class_names:
            class_folder = self._join(folder, name)
            if name not in self.classes:
                raise DataError(
                    f"{self.display(class_folder)}: class {name!r} has no folder in train/; "
                    f"every test class needs training images"
                )
            images = self._images(class_folder)
            self.names += images
            self.labels += [self.classes.index(name)] * len(images)
            self.in_test += [in_test] * len(images)

    def _images(self, class_folder):
        prefix = class_folder + "/"
        images = []
        for file in (f for f in self.sorted_files if f.startswith(prefix)):
            if os.path.splitext(file)[1].lower() in IMAGE_SUFFIXES and self.tree.files[file] > 0:
                images.append(file)
            else:
                self.skipped.append(self.display(file))
        if not images:
            raise DataError(
                f"{self.display(class_folder)}: class folder holds no images; add images or remove the folder"
            )
        return images

    def _warn_extra_folders(self, root):
        extra = [_base_name(d) for d in self._children(root)[0] if _base_name(d) not in SPLIT_FOLDERS]
        if extra:
            warn(
                f"{self.display(root)}: ignoring {listing(extra)} beside train/ and test/ "
                f"(the validation split is carved from train/)"
            )
