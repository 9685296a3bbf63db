"""The `tatumdrum` command line: a thin layer over inference, training and evaluation.

One module per group of commands; importing them registers the commands on `app`.
"""
from __future__ import annotations

import typer
from rich.markup import escape

from .. import interrupt
from . import transcribe, train, evaluate, models, separator  # noqa: F401  (registers the commands, in this order)
from .common import app, console


def main() -> None:
    """The `tatumdrum` command: library warnings never reach the user, a bad option or argument is one
    line as every other error is (click's own is a usage banner and a box), and Ctrl-C ends with one line."""
    import sys
    import warnings

    warnings.simplefilter("ignore")
    # click's exceptions as the installed typer raises them (newer typers carry a click of their own).
    errors = sys.modules[typer.BadParameter.__module__]
    no_args = getattr(errors, "NoArgsIsHelpError", ())
    try:
        code = app(standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        code = 130
    except no_args as exc:  # `tatumdrum` or a command alone: its help, as before
        print(exc.ctx.get_help())
        raise SystemExit(exc.exit_code) from None
    except errors.ClickException as exc:
        console.print(f"[bold red]error:[/] {escape(' '.join(exc.format_message().split()))}", highlight=False)
        raise SystemExit(exc.exit_code) from None
    if code == 130:  # Ctrl-C; typer turns it into this exit code without a word
        # Writers replace their output only when complete, so an interrupt leaves no partial file.
        interrupt.exit_interrupted()
    # Outside standalone mode click returns a command's exit code (typer.Exit) instead of exiting.
    if isinstance(code, int) and code:
        raise SystemExit(code)
