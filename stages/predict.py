"""Classify image files with a trained variant: python -m stages.predict --variant NAME images..."""
from stages import import_tensorflow_quietly

if __name__ == "__main__":
    import_tensorflow_quietly()
    from cnnlab.predict import main

    raise SystemExit(main())
