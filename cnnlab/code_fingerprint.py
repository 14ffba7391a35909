"""Which project files a module runs, and a fingerprint of the code a training run executes.

Checkpoints and kept seed results (data/checkpoints/) are keyed by that fingerprint too, beside
the settings and the data: a run killed before a code change must not resume on epochs, or read
back seeds, that the old code trained. The files are found as DVC's deps are checked
(tests/test_stage_deps.py): every project module the code imports, at the top or inside a
function, with the packages above it. No TensorFlow.
"""

import ast
import hashlib
from functools import cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cnnlab", "stages")
TRAINING_MODULE = "cnnlab.training"


def module_file(module, root=PROJECT_ROOT):
    """The project file of a dotted module name (a package's __init__.py), or None."""
    path = Path(root).joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path, root=PROJECT_ROOT):
    """Every project module `path` imports (at the top or inside a function), with the packages above it."""
    names = set()
    for node in ast.walk(ast.parse(Path(path).read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from pkg import module`
    modules = set()
    for name in names:
        if name.split(".")[0] in PACKAGES:
            parts = name.split(".")
            modules.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {module for module in modules if module_file(module, root)}


def import_closure(module, root=PROJECT_ROOT):
    """The project files `python -m module` runs (relative, sorted): the module, its packages and all they import."""
    parts = module.split(".")
    todo = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    seen = set()
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(imported_modules(module_file(current, root), root))
    return sorted(module_file(name, root).relative_to(root).as_posix() for name in seen)


@cache
def training_code_fingerprint(root=PROJECT_ROOT):
    """sha256 (16 hex digits) of the files cnnlab.training runs: their paths and contents."""
    digest = hashlib.sha256()
    for name in import_closure(TRAINING_MODULE, root):
        digest.update(name.encode() + b"\0" + (Path(root) / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]
