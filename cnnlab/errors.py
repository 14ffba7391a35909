"""User-facing errors: one line that names the file or key and says what to do."""

import functools
import sys


class UserError(Exception):
    """A problem with the user's input; printed as one line, no traceback."""


class ConfigError(UserError):
    """params.yaml (or a command-line option) is invalid; the message names the key."""


class DataError(UserError):
    """A dataset file, archive, image or download is unusable; the message names it."""


def exit_on_user_error(main):
    """Wrap a stage's main(): a UserError becomes `error: ...` on stderr and exit code 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper
