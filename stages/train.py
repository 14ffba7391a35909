"""DVC stage train@<variant>: train one experiment variant -> models/<variant>/ and dvclive/<variant>/."""

import argparse

from cnnlab.config import load_params, train_settings, variant_params
from cnnlab.errors import exit_on_user_error
from cnnlab.fileio import require
from cnnlab.layout import PREPARE, checkpoint_dir, live_dir, model_dir, prepared_dir
from cnnlab.tensorflow_startup import import_tensorflow_quietly


@exit_on_user_error
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variant", help="a variant name from params.yaml `variants:`")
    args = parser.parse_args(argv)
    params = load_params()
    variant = variant_params(params, args.variant)
    train = train_settings(params, args.variant)
    card = require(prepared_dir() / "card.json", PREPARE)

    import_tensorflow_quietly()
    from cnnlab.training import train_variant

    train_variant(
        args.variant,
        variant,
        train,
        data_dir=prepared_dir(),
        out_dir=model_dir(".", args.variant),
        live_dir=live_dir(".", args.variant),
        backup_dir=checkpoint_dir(".", args.variant, [variant, train], card),
    )


if __name__ == "__main__":
    main()
