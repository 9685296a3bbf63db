"""Pick a score writer from the output suffix, and write atomically."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from .jsonout import write_json
from .midi import write_midi
from .musicxml import write_musicxml
from .plot import write_png
from ..score import DrumScore

Writer = Callable[[DrumScore, Path], None]

FORMATS: dict[str, Writer] = {
    ".mid": write_midi,
    ".midi": write_midi,
    ".musicxml": write_musicxml,
    ".xml": write_musicxml,
    ".json": write_json,
    ".png": write_png,
}


class UnsupportedFormatError(ValueError):
    """The output suffix names no format tatumdrum writes."""


def check_output_path(path: Path | str) -> Writer:
    """The writer for `path`; raises UnsupportedFormatError so a CLI can fail before transcribing."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        known = ", ".join(FORMATS)
        raise UnsupportedFormatError(f"cannot write {str(path)!r}: unknown suffix {suffix or '(none)'!r}; use one of {known}")
    return FORMATS[suffix]


def _umask() -> int:
    # There is no way to read the umask without setting it.
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` that replaces it when the block succeeds; nothing is left otherwise.

    Errors name `path`, not the temporary file, and an interrupted write (Ctrl-C) leaves no partial file.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A temporary file in the same directory, so os.replace is a rename on one file system.
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OSError(f"{path}: cannot write ({exc.strerror or exc})") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private; the output should get the usual permissions.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OSError(f"{path}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_score(score: DrumScore, path: Path | str) -> Path:
    """Write `score` in the format its suffix names; a failure leaves any earlier file untouched."""
    path = Path(path)
    writer = check_output_path(path)
    with atomic_path(path) as tmp:
        writer(score, tmp)
    return path
