"""Compare every variant in params.yaml -> plots/comparison.csv, .md and .png."""
import argparse

from cnnlab.config import load_params
from cnnlab.errors import exit_on_user_error
from cnnlab.plotting import write_comparison


@exit_on_user_error
def main(argv=None):
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    frame = write_comparison(list(load_params()["variants"]))
    print(frame.to_string(index=False, columns=["variant", "params", "test_accuracy", "train_seconds"]))


if __name__ == "__main__":
    main()
