"""One metric of every variant across DVC experiments: a variant per row, an experiment per
column. `dvc exp show` puts each experiment on a row and each variant's metric in a column of
its own, which a terminal cannot fit past a few variants; turned on its side the table stays
readable with any number of variants.
"""

import re
from numbers import Real

import pandas as pd

from cnnlab.errors import UserError

# `dvc exp show` names a metric column <metrics file>:<key>; the evaluate stage writes metrics/<variant>.json.
METRIC_COLUMN = re.compile(r"metrics/(?P<variant>[^/]+)\.json:(?P<metric>.+)")


def experiment_name(record):
    """workspace, the branch or commit, or the experiment's name."""
    return record["Experiment"] or record["rev"]


def variants_by_experiment(records, metric="test_accuracy", only_changed=False):
    """A frame of `metric` (variants x experiments) from dvc.api.exp_show() records, best
    variant of the first experiment first; experiments without that metric are left out (DVC
    gives "!" for a metric it could not read)."""
    columns, known = {}, set()
    for record in records:
        values = {}
        for key, value in record.items():
            found = METRIC_COLUMN.fullmatch(key)
            if found and isinstance(value, Real) and not isinstance(value, bool):
                known.add(found["metric"])
                if found["metric"] == metric:
                    values[found["variant"]] = value
        if values:
            columns[experiment_name(record)] = values
    if not columns:
        hint = f"known: {', '.join(sorted(known))}" if known else "run `dvc repro` or `dvc exp run` first"
        raise UserError(f"no experiment has metrics/<variant>.json:{metric}; {hint}")
    frame = pd.DataFrame(columns)
    if only_changed:
        frame = frame[frame.nunique(axis=1, dropna=False) > 1]
    return frame.sort_values(frame.columns[0], ascending=False)
