"""One-line notices on stderr, in the same style as `error: ...` from exit_on_user_error."""

import sys


def warn(message):
    print(f"warning: {message}", file=sys.stderr)


def listing(names, shown=3):
    """'a, b, c and 7 more' for messages that must stay on one line."""
    names = [str(name) for name in names]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
