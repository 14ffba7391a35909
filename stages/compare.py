"""Compare every variant in params.yaml -> plots/comparison.csv, .md and .png."""

import argparse

from cnnlab.comparison import write_comparison
from cnnlab.config import load_params
from cnnlab.errors import exit_on_user_error


@exit_on_user_error
def main(argv=None):
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    frame = write_comparison(load_params()["variants"])
    print(frame.to_string(index=False, columns=["variant", "params", "test_accuracy", "train_seconds"]))


if __name__ == "__main__":
    main()
