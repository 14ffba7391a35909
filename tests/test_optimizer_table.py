"""scripts/optimizer_table.py: seed 004's optimizer study table from `dvc exp show --json`."""

import json
import subprocess
import sys

from tests.helpers import REPO, exp_show_row, markdown_table


def family(variant, optimizer, **options):
    return {variant: {"optimizer": {"name": optimizer}, "options": options}}


def run(rev, name, variant, optimizer, best_val, test, train=None, **options):
    metrics = {f"metrics/{variant}.json": {"best_val_accuracy": best_val, "test_accuracy": test}}
    params = {"variants": family(variant, optimizer, **options), **({"train": train} if train else {})}
    return exp_show_row(rev, name, params, metrics)


SHOWN = [
    exp_show_row(
        "0123456789",
        "main",
        {"variants": {**family("alexnet", "adam"), **family("vgg16", "adam", implementation="hand")}},
        {
            "metrics/alexnet.json": {"best_val_accuracy": 0.61, "test_accuracy": 0.60},
            "metrics/vgg16.json": {"best_val_accuracy": 0.55, "test_accuracy": 0.54},
        },
        experiments=[
            # newest, but not the study's runs: another seed, and hand-built VGG16 without BatchNorm
            run("abc7", "alex-sgd-seed43", "alexnet", "sgd", 0.20, 0.19, train={"seed": 43}),
            run("abc6", "vggh-nobn", "vgg16", "adam", 0.10, 0.10, implementation="hand", batchnorm=False),
            run("abc5", "alex-sgd-new", "alexnet", "sgd", 0.70, 0.69),  # dvc lists the newest first
            run("abc4", "alex-sgd-old", "alexnet", "sgd", 0.30, 0.29),
            run("abc3", "vggk-adam", "vgg16", "adam", 0.1002, 0.10, implementation="keras", batchnorm=False),
            run("abc2", "vggk-adagrad", "vgg16", "adagrad", 0.52, 0.51, implementation="keras"),
            run("abc1", "alex-adadelta", "alexnet", "adadelta", 0.40, 0.41),
            exp_show_row("abc0", "queued", {"variants": family("resnet", "sgd")}),
        ],
    ),
]


def table(text):
    return subprocess.run(
        [sys.executable, "scripts/optimizer_table.py", "-"], input=text, cwd=REPO, capture_output=True, text=True
    )


def test_each_cell_shows_our_newest_run_beside_theirs_and_the_winners():
    result = table(json.dumps(SHOWN))
    assert result.returncode == 0, result.stderr
    assert "6 of 20 run" in result.stdout.splitlines()[0]
    rows = {cells[0]: cells[1:] for cells in markdown_table(result.stdout)[2:]}
    adam, adadelta, adagrad, sgd, best = rows["AlexNet"]
    assert adam == "**61.00 %** (60.00 %) [73.93 %]"  # the baseline commit's run
    assert sgd == "**70.00 %** (69.00 %) [74.62 %]"  # the newer of two runs
    assert adadelta == "**40.00 %** (41.00 %) [65.01 %]"
    assert adagrad == "not run [72.77 %]"
    assert best == "sgd (sgd)"
    keras_adam, _, keras_adagrad, _, keras_best = rows["VGG16, keras.applications"]
    assert keras_adam == "**10.02 %** (10.00 %, did not learn) [did not learn]"
    assert keras_adagrad == "**52.00 %** (51.00 %) [65.93 %]"
    assert keras_best == "adagrad (adagrad)"  # adam did not learn, so it is no winner
    assert rows["VGG16, hand-built"][0] == "**55.00 %** (54.00 %) [27.11 %, never learned]"
    assert rows["VGG16, hand-built"][4] == "adam (adagrad)"
    assert rows["GoogLeNet (auxiliary heads)"][1:4:2] == ["not run [above 70 %]", "not run [about 80 %]"]
    assert rows["ResNet"] == ["not run [not run]"] * 4 + ["not run (no figure)"]
    assert (
        result.stdout.splitlines()[-1]
        == "Left out, as they change more than the optimizer: alex-sgd-seed43, vggh-nobn."
    )


def test_input_without_the_study_is_a_one_line_error():
    result = table(json.dumps([exp_show_row("workspace")]))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: no run of alexnet, vgg16, googlenet or resnet with test metrics; run the study first"
    )
