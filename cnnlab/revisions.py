"""Git-tracked result files as they are in the workspace, in a commit, or in a DVC experiment.

A revision is anything `git rev-parse` takes (HEAD~1, main, a tag, a hash) or the name of a DVC
experiment of this repository (`dvc exp show` lists them; DVC keeps each under refs/exps/). The
files read here (metrics/, metrics/details/, metrics/repeats/) are in git, not DVC's cache, so
this works in a fresh clone or a CI job with no DVC remote.
"""

import json
import subprocess
from pathlib import Path, PurePosixPath

from cnnlab.errors import UserError

WORKSPACE = None


def git(*args, root="."):
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    except FileNotFoundError:
        raise UserError("git: command not found; comparing revisions needs git") from None


def resolve(revision, root="."):
    """The commit hash of a git revision or a DVC experiment name; a UserError naming it otherwise."""
    found = git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}", root=root)
    if found.returncode == 0:
        return found.stdout.strip()
    refs = git("for-each-ref", "--format=%(refname) %(objectname)", "refs/exps", root=root).stdout.split("\n")
    matches = sorted({line.split()[1] for line in refs if line and line.split()[0].rsplit("/", 1)[-1] == revision})
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UserError(f"{revision}: names {len(matches)} DVC experiments; give a commit hash instead")
    raise UserError(f"{revision}: no such git revision or DVC experiment here (`dvc exp show` lists them)")


def read_text(path, revision=WORKSPACE, root="."):
    """The file's text in the workspace (revision None) or at `revision`; None where it is absent."""
    if revision is WORKSPACE:
        local = Path(root) / path
        return local.read_text(encoding="utf-8") if local.is_file() else None
    shown = git("show", f"{resolve(revision, root)}:{PurePosixPath(path)}", root=root)
    return shown.stdout if shown.returncode == 0 else None


def read_json(path, revision=WORKSPACE, root="."):
    text = read_text(path, revision, root)
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        where = "the workspace" if revision is WORKSPACE else revision
        raise UserError(f"{path} in {where}: not valid JSON ({error})") from None


def json_files(folder, revision=WORKSPACE, root="."):
    """The names (without .json) of the JSON files directly in `folder`."""
    if revision is WORKSPACE:
        return sorted(path.stem for path in (Path(root) / folder).glob("*.json"))
    listed = git("ls-tree", "--name-only", f"{resolve(revision, root)}:{folder}", root=root)
    return sorted(name[: -len(".json")] for name in listed.stdout.split() if name.endswith(".json"))
