"""DVC stage train@<variant>: train one experiment variant -> models/<variant>/ and dvclive/<variant>/."""

from cnnlab.code_fingerprint import training_code_fingerprint
from cnnlab.config import train_settings
from cnnlab.errors import exit_on_user_error
from cnnlab.fileio import require
from cnnlab.layout import PREPARE, checkpoint_dir, live_dir, model_dir, prepared_dir
from cnnlab.tensorflow_startup import import_tensorflow_quietly
from stages.variant_stage import variant_from_command_line


@exit_on_user_error
def main(argv=None):
    name, params, variant = variant_from_command_line(__doc__, argv)
    train = train_settings(params, name)
    card = require(prepared_dir() / "card.json", PREPARE)

    import_tensorflow_quietly()
    from cnnlab.training import train_variant

    train_variant(
        name,
        variant,
        train,
        data_dir=prepared_dir(),
        out_dir=model_dir(".", name),
        live_dir=live_dir(".", name),
        backup_dir=checkpoint_dir(".", name, [variant, train, training_code_fingerprint()], card),
    )


if __name__ == "__main__":
    main()
