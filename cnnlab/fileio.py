"""Atomic output writing: a crash never leaves a half-written file at an output path."""

import contextlib
import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from cnnlab.errors import UserError


class DiskFullError(UserError):
    """No space left while writing an output; the output was not written."""


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    Works for files and directories: whatever the block creates at the temporary path
    replaces `path` as a whole.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the temporary keeps the extension: Keras and numpy choose (or demand) a format by it
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent))
    shutil.rmtree(tmp)
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except (DiskFullError, OSError) as error:
        if isinstance(error, OSError) and error.errno != errno.ENOSPC:
            raise
        # named after the outermost output, not a temporary file inside it
        raise DiskFullError(
            f"{path}: disk full while writing it; free some space and rerun (nothing was written there)"
        ) from None
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_text(path, text):
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path, data):
    write_text(path, json.dumps(to_jsonable(data), indent=2, sort_keys=False) + "\n")


def read_json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def to_jsonable(value):
    """Convert numpy scalars/arrays (and nested containers of them) to plain JSON types."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def require(path, command):
    """Fail with one line naming a missing input and the command that produces it."""
    if not Path(path).exists():
        raise UserError(f"{path}: missing; run `{command}` first")
    return Path(path)


def load_json(path, command):
    """A pipeline output read back: one line naming the file when it is missing (with the
    `command` that produces it) or not valid JSON."""
    try:
        return read_json(require(path, command))
    except ValueError as error:
        raise UserError(f"{path}: not valid JSON ({error}); rerun `{command}`") from None
