"""DVC stage evaluate@<variant>: test-set metrics -> metrics/<variant>.json and eval/<variant>/."""
import argparse

from cnnlab.config import load_params, variant_params
from cnnlab.errors import exit_on_user_error
from cnnlab.evaluation import evaluate_variant


@exit_on_user_error
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variant", help="a variant name from params.yaml `variants:`")
    args = parser.parse_args(argv)
    variant = variant_params(load_params(), args.variant)
    metrics = evaluate_variant(args.variant, tta=variant["tta"])
    print(f"{args.variant}: test accuracy {metrics['test_accuracy']:.4f}, test loss {metrics['test_loss']:.4f}")


if __name__ == "__main__":
    main()
