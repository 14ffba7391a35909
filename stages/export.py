"""DVC stage export@<variant>: the trained model as LiteRT (float and dynamic-range int8) and ONNX
files -> exports/<variant>/, with each file's size, batch-1 latency and test accuracy, measured
by its own runtime -> metrics/export/<variant>.json. TensorFlow gets as many threads as the
runtimes (export.threads), so that the Keras latency compares with theirs."""

from cnnlab.errors import exit_on_user_error
from cnnlab.tensorflow_startup import import_tensorflow_quietly
from stages.variant_stage import variant_from_command_line


@exit_on_user_error
def main(argv=None):
    name, params, _ = variant_from_command_line(__doc__, argv)
    import_tensorflow_quietly()
    from cnnlab.export import export_variant, limit_tensorflow_threads

    limit_tensorflow_threads(params["export"]["threads"])  # before TensorFlow runs anything
    export_variant(name, params["export"])


if __name__ == "__main__":
    main()
