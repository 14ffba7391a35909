"""Whether two results differ beyond their noise: two variants (`fast seed001_exp2`), or one
variant in two revisions or DVC experiments (`fast@main fast`, `fast@HEAD~1 fast@my-experiment`).
Prints each test accuracy with its 95 % interval, then the difference, its 95 % interval and the
p-value: McNemar's exact test on the same test images, and over seeds Welch's t-test where both
have repeats or a t-test of the single run against the seeds where one has. Reads git-tracked
files only (metrics/, metrics/details/, metrics/repeats/)."""

import argparse

from cnnlab.errors import exit_on_user_error
from cnnlab.significance import load_spec, report_lines


@exit_on_user_error
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("first", help="VARIANT (the workspace) or VARIANT@REVISION (commit, branch, tag, experiment)")
    parser.add_argument("second", help="the other one, in the same form")
    args = parser.parse_args(argv)
    print("\n".join(report_lines(load_spec(args.first), load_spec(args.second))))


if __name__ == "__main__":
    main()
