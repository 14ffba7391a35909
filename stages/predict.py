"""Classify image files with a trained variant: python -m stages.predict --variant NAME images..."""

from cnnlab.predict_command import main

if __name__ == "__main__":
    raise SystemExit(main())
