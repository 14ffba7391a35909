"""scripts/grid_table.py: seed 001's grid table from `dvc exp show --csv`."""

import subprocess
import sys

from tests.helpers import REPO

EXP_SHOW = """Experiment,rev,typ,metrics/seed001_exp1.json:test_accuracy,metrics/fast.json:test_accuracy,\
variants.seed001_exp1.optimizer.learning_rate,variants.seed001_exp1.batch_size,variants.seed001_exp1.epochs
,workspace,baseline,0.6412,0.85,0.001,32,10
,main,baseline,0.6412,0.85,0.001,32,10
lr01-b64,abc1234,branch_commit,0.3856,0.85,0.01,64,10
old-lr01-b64,abc1200,branch_commit,0.2,0.85,0.01,64,10
diverged,abc1111,branch_commit,0.1,0.85,0.01,32,5
"""


def table(csv_text):
    result = subprocess.run(
        [sys.executable, "scripts/grid_table.py", "-"], input=csv_text, cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_each_cell_shows_our_newest_result_beside_the_original():
    rows = table(EXP_SHOW).splitlines()
    assert rows[0].startswith("Ours in bold") and "3 of 27 run" in rows[0]
    lr01 = next(row for row in rows if row.startswith("| 0.01 |")).split(" | ")
    assert lr01[1] == "**10.00 %** (10 %)"  # (32, 5)
    assert lr01[5] == "**38.56 %** (38.56 %)"  # (64, 10): the newest of two runs
    assert lr01[2] == "not run (10 %)"
    lr001 = next(row for row in rows if row.startswith("| 0.001 |"))
    assert "**64.12 %** (60.76 %)" in lr001


def test_a_table_without_the_grid_columns_is_a_one_line_error():
    result = subprocess.run(
        [sys.executable, "scripts/grid_table.py", "-"],
        input="Experiment,rev\n,workspace\n",
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: `dvc exp show --csv` has no column")
