"""DVC stage evaluate@<variant>: test-set metrics -> metrics/<variant>.json and eval/<variant>/,
and every picture of the variant -> plots/<variant>/."""

from cnnlab.errors import exit_on_user_error
from cnnlab.tensorflow_startup import import_tensorflow_quietly
from stages.variant_stage import variant_from_command_line

TTA_NAMES = {False: "", True: " with flip TTA", "flip": " with flip TTA", "flip_shift": " with flip + shift TTA"}


@exit_on_user_error
def main(argv=None):
    name, params, variant = variant_from_command_line(__doc__, argv)
    import_tensorflow_quietly()
    from cnnlab.evaluation import evaluate_variant, load_variant_model
    from cnnlab.variant_plots import write_variant_plots

    model = load_variant_model(".", name)
    print(f"{name}: predicting the test split{TTA_NAMES[variant['tta']]}", flush=True)
    metrics = evaluate_variant(name, tta=variant["tta"], model=model)
    print(f"{name}: test accuracy {metrics['test_accuracy']:.4f}, test loss {metrics['test_loss']:.4f}")
    print(f"{name}: drawing plots/{name}/ (curves, confusion, filters, feature maps, samples)", flush=True)
    figures = write_variant_plots(name, params["plots"], model=model)
    print(f"plots/{name}/: {len(figures)} pictures written")


if __name__ == "__main__":
    main()
