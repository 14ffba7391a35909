"""A Markdown summary of what a change did to the metrics: every metric that differs from a base
revision, and whether each change in test accuracy goes beyond its noise (95 % interval of the
change and p-value). Reads git-tracked files only, so CI needs no DVC remote:
`python -m stages.pr_summary --base origin/main >> "$GITHUB_STEP_SUMMARY"`."""

import argparse

from cnnlab.errors import exit_on_user_error
from cnnlab.pr_summary import summary_markdown


@exit_on_user_error
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True, help="the revision to compare against (branch, commit, experiment)")
    parser.add_argument("--head", help="the revision with the change (default: the workspace)")
    args = parser.parse_args(argv)
    print(summary_markdown(args.base, args.head))


if __name__ == "__main__":
    main()
