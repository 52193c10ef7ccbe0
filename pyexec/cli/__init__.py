"""The pyexec command line: a Typer app (app.py), the options commands share
(options.py), the renderers (output.py), and a file per group of commands.
main() is the edge where every error becomes one line and an exit code."""

# No `from __future__ import annotations` in this package: Typer would have to
# evaluate every parameter's annotation from its string at each start-up (about 10 ms).
import io
import os
import sys
from typing import Any, Optional

import typer

from ..errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_NO_PERMISSION, EXIT_OK, EXIT_UNSUPPORTED, \
    BpfPermissionError, PyexecError, UnsupportedKernelError
# Each registers its commands on app, in the order --help lists them.
from . import counting, pinned, serve, diff, diagnostics, output  # noqa: F401
from .app import app, say

HELP_WIDTH_IN_A_PIPE = 120

# Typer may bundle its own click: find click's base exception through Typer's.
_ClickException: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point: errors become one line on stderr and a documented exit code."""
    # Started with stdout or stderr closed (>&-): Python made them None.
    output.stdout_closed = sys.stdout is None
    sys.stdout = sys.stdout or open(os.devnull, "w")
    sys.stderr = sys.stderr or open(os.devnull, "w")
    for stream in (sys.stdout, sys.stderr):  # an ASCII-only locale shows the rest escaped
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    import warnings

    from ..errors import PyexecWarning

    if not sys.stdout.isatty() and not os.environ.get("TERMINAL_WIDTH") and not os.environ.get("COLUMNS"):
        # Read by Typer's help (imported only for help): not rich's 80, which cuts option texts.
        os.environ["TERMINAL_WIDTH"] = str(HELP_WIDTH_IN_A_PIPE)
    warnings.showwarning = lambda message, category, *rest: say(
        f"warning: {message}" if issubclass(category, PyexecWarning) else f"{category.__name__}: {message}")
    try:
        code = typer.main.get_command(app).main(args=argv, prog_name="pyexec", standalone_mode=False)
    except _ClickException as error:
        command = getattr(getattr(error, "ctx", None), "command_path", "pyexec")
        message = error.format_message()
        if message:  # bare pyexec: the help is printed, and no empty error line after it
            say(f"{message} (see '{command} --help')")
        code = error.exit_code
    except BpfPermissionError as error:
        code = fail(error, EXIT_NO_PERMISSION)
    except UnsupportedKernelError as error:
        code = fail(error, EXIT_UNSUPPORTED)
    except BrokenPipeError:  # the reader went away (| head): nothing left to say
        sys.stdout = open(os.devnull, "w")
        code = EXIT_ERROR
    except (PyexecError, OSError) as error:
        code = fail(error, EXIT_ERROR)
    except (typer.Abort, KeyboardInterrupt):  # Ctrl-C before counting began
        code = EXIT_INTERRUPTED
    except Exception as error:  # a bug of ours: still one line, and a way to report it
        code = fail(f"internal error: {error!r}; please report it with the command that caused it", EXIT_ERROR)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def fail(error: BaseException | str, code: int) -> int:
    say(f"error: {error}")
    return code
