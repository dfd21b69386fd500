"""One base for the errors a user can act on, and the one way every entry point reports them.

Each stage raises its own subclass (`TrainError`, `ModelFileError`, ...), whose message names the
file and the problem. The four Hydra entry points and the two CLIs print it as one line and exit
1: a user never sees a traceback for bad input (`hydra.verbose=rvc` shows the details in logs).
"""

from __future__ import annotations

import sys


class RVCError(Exception):
    """Bad input or a missing piece, said in one line that names the file and the problem."""


def one_line(e: BaseException) -> str:
    """The first line of the message; a type name prefix for errors that are not ours."""
    text = str(e).strip()
    message = text.splitlines()[0] if text else type(e).__name__
    if not isinstance(e, (RVCError, OSError, ValueError)):
        message = f"{type(e).__name__}: {message}"
    return message


def report(e: BaseException, prog: str, hint: str | None = None) -> int:
    """Print `prog: error: <one line>` (and a hint) to stderr; the exit status to return."""
    print(f"{prog}: error: {one_line(e)}", file=sys.stderr)
    if hint:
        print(f"({hint})", file=sys.stderr)
    return 1
