"""Ctrl-C that is never lost and always ends the same way: `interrupted` on stderr and exit status 130.

A library may swallow a KeyboardInterrupt while it loads (a bare `except:` around an import), and
Python kills itself with SIGINT at exit once an interrupt went through some C-level code paths, even
after the program handled it. So the handler also records the press, long jobs `check` it between
steps, and the exit is made directly.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Iterator

_pressed = False
_deferred = 0


def _handler(signum, frame) -> None:
    global _pressed
    _pressed = True
    # An exception raised inside an import or a library's loading can end in C++ (pybind11 callbacks
    # in torch and onnxruntime): std::terminate, a crash instead of a clean stop. There the press is
    # only recorded, and `check` raises it once the loading is over.
    if _deferred or _in_import(frame):
        return
    raise KeyboardInterrupt


def _in_import(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Record Ctrl-C without raising inside the block (loading libraries and models); raise it after."""
    global _deferred
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1
    check()


def install() -> None:
    """Take over SIGINT, unless it is ignored (a job started in the background keeps ignoring it)."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _handler)


def finished() -> None:
    """The command is over and its outputs are written: a Ctrl-C now, while Python shuts down (joining
    threads, tearing modules down), would only kill it by SIGINT and make a finished run look failed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
