"""DVC stage train@<variant>: train one experiment variant -> models/<variant>/."""
import argparse
import hashlib
import json

from cnnlab.config import load_params, variant_params
from cnnlab.errors import exit_on_user_error
from cnnlab.fileio import require


def checkpoint_dir(name, variant, train_params, card_path):
    """Resume state lives outside DVC outputs, keyed by everything that shapes the run,
    so a changed variant never resumes from a stale checkpoint."""
    with open(require(card_path, "dvc repro prepare"), "rb") as card:
        fingerprint = json.dumps([variant, train_params], sort_keys=True).encode() + card.read()
    return f"data/checkpoints/{name}/{hashlib.sha256(fingerprint).hexdigest()[:16]}"


@exit_on_user_error
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variant", help="a variant name from params.yaml `variants:`")
    args = parser.parse_args(argv)
    params = load_params()
    variant = variant_params(params, args.variant)

    from cnnlab.training import train_variant

    train_variant(args.variant, variant, params["train"], data_dir="data/prepared",
                  out_dir=f"models/{args.variant}", live_dir=f"dvclive/{args.variant}",
                  backup_dir=checkpoint_dir(args.variant, variant, params["train"], "data/prepared/card.json"))


if __name__ == "__main__":
    main()
