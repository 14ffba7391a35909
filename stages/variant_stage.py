"""What the per-variant stages (train@, evaluate@, repeat@, export@) share: their command line."""

import argparse

from cnnlab.config import load_params, variant_params


def variant_from_command_line(description, argv=None):
    """(variant name, checked params, that variant's settings) from `python -m stages.<x> <variant>`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("variant", help="a variant name from params.yaml `variants:`")
    name = parser.parse_args(argv).variant
    params = load_params()
    return name, params, variant_params(params, name)
