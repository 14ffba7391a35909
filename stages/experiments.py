"""Every variant's test accuracy (or --metric) in each DVC experiment of this commit, a variant per
row and an experiment per column: `dvc exp show` turned on its side. `--metric eval.accuracy`
(or `step`) follows the latest epoch of runs still training."""

import argparse

from cnnlab.errors import exit_on_user_error
from cnnlab.experiments import dvc_exp_show, experiments, variants_by_experiment


@exit_on_user_error
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--metric",
        default="test_accuracy",
        help="a key of metrics/<variant>.json or, while it trains, dvclive/_running/<variant>.json",
    )
    parser.add_argument("--only-changed", action="store_true", help="only variants whose metric differs")
    args = parser.parse_args(argv)
    frame = variants_by_experiment(experiments(dvc_exp_show()), args.metric, args.only_changed)
    print(frame.to_markdown(floatfmt=".4g", missingval="-"))


if __name__ == "__main__":
    main()
