"""Ctrl-C that is never lost and always ends the same way: `interrupted` on stderr and exit status 130.

A library may swallow a KeyboardInterrupt while it loads (a bare `except:` around an import), and
Python kills itself with SIGINT at exit once an interrupt went through some C-level code paths, even
after the program handled it. So the handler also records the press, long jobs `check` it between
steps, and the exit is made directly.
"""
from __future__ import annotations

import os
import signal
import sys

_pressed = False


def _handler(signum, frame) -> None:
    global _pressed
    _pressed = True
    raise KeyboardInterrupt


def install() -> None:
    """Take over SIGINT, unless it is ignored (a job started in the background keeps ignoring it)."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _handler)


def check() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed, also where a library swallowed the first one."""
    if _pressed:
        raise KeyboardInterrupt


def exit_interrupted() -> None:
    """Say `interrupted` and exit with status 130 at once."""
    sys.stdout.flush()
    sys.stderr.write("interrupted\n")
    sys.stderr.flush()
    os._exit(130)
