"""DVC stage repeat@<variant>: the variant trained at more seeds (repeats.runs in params.yaml) ->
metrics/repeats/<variant>.json: each run's test accuracy and per-image correctness, and their
mean, standard deviation and range."""

from cnnlab.config import repeat_runs, train_settings
from cnnlab.errors import exit_on_user_error
from cnnlab.tensorflow_startup import import_tensorflow_quietly
from stages.variant_stage import variant_from_command_line


@exit_on_user_error
def main(argv=None):
    name, params, variant = variant_from_command_line(__doc__, argv)
    runs = repeat_runs(params, name)
    if runs > 1:
        import_tensorflow_quietly()
    from cnnlab.repeats import repeat_variant

    record = repeat_variant(name, variant, train_settings(params, name), runs)
    spread = f"mean {record['mean']:.4f}" + (f", std {record['std']:.4f}" if record["std"] is not None else "")
    print(f"{name}: {record['n']} runs, test accuracy {spread}, {record['min']:.4f}-{record['max']:.4f}")


if __name__ == "__main__":
    main()
