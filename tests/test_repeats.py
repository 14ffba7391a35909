"""Stage repeat@<variant>'s bookkeeping, without training: the main run it starts from."""

import numpy as np
import pytest

from cnnlab.errors import DataError
from cnnlab.fileio import write_json
from cnnlab.layout import details_path
from cnnlab.per_image import details_record
from cnnlab.repeats import main_run

CORRECT = np.array([True, False, True, True, False])


def test_the_main_run_is_read_back_from_its_evaluation(tmp_path):
    write_json(details_path(tmp_path, "fast"), details_record(CORRECT, "sha256:now", best_epoch=4))
    np.testing.assert_array_equal(main_run(tmp_path, "fast", "sha256:now"), CORRECT)


def test_a_main_run_scored_on_another_test_split_is_refused(tmp_path):
    write_json(details_path(tmp_path, "fast"), details_record(CORRECT, "sha256:before", best_epoch=4))

    with pytest.raises(DataError) as error:
        main_run(tmp_path, "fast", "sha256:now")

    assert str(error.value) == (
        f"{details_path(tmp_path, 'fast')}: scored on another test split than data/prepared/; "
        "rerun `dvc repro evaluate@fast` before `dvc repro repeat@fast`"
    )
