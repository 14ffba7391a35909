"""`python -m stages.predict` and the installed `cnnlab-predict` command: TensorFlow imported
without its start-up noise, then cnnlab.predict.main."""

from cnnlab.tensorflow_startup import import_tensorflow_quietly


def main(argv=None, prog="python -m stages.predict"):
    import_tensorflow_quietly()
    from cnnlab.predict import main as predict

    return predict(argv, prog)


def console_main():
    return main(prog="cnnlab-predict")
