"""`transcribe --manifest FILE`: a JSON Lines record of what a run did, one line per input.

Each record is written and flushed to disk as its song finishes, so a run that is interrupted or
killed still tells which files were done; a resumed run appends to the same file. A record holds
the input, its outputs, the status (`ok`, `failed` or `skipped`), the error, the seconds it took,
the model, the options and the package version, and when it finished.
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

STATUSES = ("ok", "failed", "skipped")


class Manifest:
    """An append-only JSON Lines file; `None` as the path records nothing."""

    def __init__(self, path: Path | None, model: str, options: dict[str, Any]) -> None:
        from . import __version__

        self.path = path
        self.common = {"model": model, "options": options, "version": __version__}
        self._file = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "a", encoding="utf-8")

    def record(self, audio: Path | str, outputs: tuple[Path, ...], status: str, error: str | None = None,
               seconds: float = 0.0) -> None:
        if status not in STATUSES:
            raise ValueError(f"status {status!r}: not one of {STATUSES}")
        if self._file is None:
            return
        line = {"input": str(audio), "outputs": [str(p) for p in outputs], "status": status, "error": error,
                "seconds": round(seconds, 3), **self.common,
                "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        self._file.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "Manifest":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_manifest(path: Path) -> list[dict[str, Any]]:
    """Every record of a manifest, oldest first."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
