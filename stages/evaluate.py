"""DVC stage evaluate@<variant>: test-set metrics -> metrics/<variant>.json and eval/<variant>/,
and every picture of the variant -> plots/<variant>/."""

import argparse

from cnnlab.config import load_params, variant_params
from cnnlab.errors import exit_on_user_error
from cnnlab.tensorflow_startup import import_tensorflow_quietly

TTA_NAMES = {False: "", True: " with flip TTA", "flip": " with flip TTA", "flip_shift": " with flip + shift TTA"}


@exit_on_user_error
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variant", help="a variant name from params.yaml `variants:`")
    args = parser.parse_args(argv)
    params = load_params()
    variant = variant_params(params, args.variant)
    import_tensorflow_quietly()
    from cnnlab.evaluation import evaluate_variant, load_variant_model
    from cnnlab.variant_plots import write_variant_plots

    model = load_variant_model(".", args.variant)
    print(f"{args.variant}: predicting the test split{TTA_NAMES[variant['tta']]}", flush=True)
    metrics = evaluate_variant(args.variant, tta=variant["tta"], model=model)
    print(f"{args.variant}: test accuracy {metrics['test_accuracy']:.4f}, test loss {metrics['test_loss']:.4f}")
    print(
        f"{args.variant}: drawing plots/{args.variant}/ (curves, confusion, filters, feature maps, samples)", flush=True
    )
    figures = write_variant_plots(args.variant, params["plots"], model=model)
    print(f"plots/{args.variant}/: {len(figures)} pictures written")


if __name__ == "__main__":
    main()
