"""Stage 1 library: read a dataset from wherever it lives, normalize it, write data/prepared/.

`cnnlab.data.preparation.prepare(data_params, out_dir, download_dir) -> card` writes it and
`cnnlab.data.prepared` reads it back (see docs/design.md). Nothing is imported here: image-
decoding worker processes import this package and must start fast, and the stages that only
read the prepared splits must not depend on the readers of every dataset format.
"""
