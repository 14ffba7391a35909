"""DVC stage export@<variant>: the trained model as LiteRT (float and dynamic-range int8) and ONNX
files -> exports/<variant>/, with each file's size, batch-1 latency and test accuracy, measured
by its own runtime -> metrics/export/<variant>.json."""

import argparse

from cnnlab.config import load_params, variant_params
from cnnlab.errors import exit_on_user_error
from cnnlab.tensorflow_startup import import_tensorflow_quietly


@exit_on_user_error
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variant", help="a variant name from params.yaml `variants:`")
    args = parser.parse_args(argv)
    params = load_params()
    variant_params(params, args.variant)
    import_tensorflow_quietly()
    from cnnlab.export import export_variant

    export_variant(args.variant, params["export"])


if __name__ == "__main__":
    main()
