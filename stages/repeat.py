"""DVC stage repeat@<variant>: the variant trained at more seeds (repeats.runs in params.yaml) ->
metrics/repeats/<variant>.json: each run's test accuracy and per-image correctness, and their
mean, standard deviation and range."""

import argparse

from cnnlab.config import load_params, repeat_runs, train_settings, variant_params
from cnnlab.errors import exit_on_user_error
from cnnlab.tensorflow_startup import import_tensorflow_quietly


@exit_on_user_error
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variant", help="a variant name from params.yaml `variants:`")
    args = parser.parse_args(argv)
    params = load_params()
    variant = variant_params(params, args.variant)
    runs = repeat_runs(params, args.variant)
    if runs > 1:
        import_tensorflow_quietly()
    from cnnlab.repeats import repeat_variant

    record = repeat_variant(args.variant, variant, train_settings(params, args.variant), runs)
    spread = f"mean {record['mean']:.4f}" + (f", std {record['std']:.4f}" if record["std"] is not None else "")
    print(f"{args.variant}: {record['n']} runs, test accuracy {spread}, {record['min']:.4f}-{record['max']:.4f}")


if __name__ == "__main__":
    main()
