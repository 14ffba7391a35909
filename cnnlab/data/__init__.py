"""Stage 1 library: read a dataset from wherever it lives, normalize it, write data/prepared/.

Public API: `prepare(data_params, out_dir, download_dir) -> card` (see docs/design.md).
"""
__all__ = ["prepare"]


def __getattr__(name):
    # Lazy, because image-decoding worker processes import this package and must start fast
    # (scikit-learn alone takes seconds to import).
    if name == "prepare":
        from cnnlab.data.preparation import prepare

        return prepare
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
