"""Comparison report of every variant in params.yaml -> report/index.html and report/README.md."""

import argparse

from cnnlab.config import load_params
from cnnlab.errors import exit_on_user_error
from cnnlab.layout import REPORT_DIR
from cnnlab.report import NOT_EVALUATED, write_report


@exit_on_user_error
def main(argv=None):
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    rows = write_report(load_params())
    waiting = [row["variant"] for row in rows if not row["evaluated"]]
    print(f"{REPORT_DIR}/index.html and {REPORT_DIR}/README.md written ({len(rows) - len(waiting)} variants)")
    if waiting:
        print(f"{NOT_EVALUATED}: {', '.join(waiting)}")


if __name__ == "__main__":
    main()
