"""Folders in parallel (`transcribe --jobs N`): each worker process loads the models once and takes songs
one at a time; the parent only plans, reports progress and prints the results.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .outputs import Job

_WORKER: dict[str, Any] = {}


@dataclass(frozen=True)
class JobResult:
    audio: Path
    outputs: tuple[Path, ...]
    error: str | None = None
    warnings: tuple[str, ...] = ()
    onsets: int = 0
    beats: int = 0


def init_worker(transcriber_kwargs: dict, separator: tuple[str, Path | None] | None) -> None:
    """Load the transcriber (and separator) once per worker process, with one torch thread each."""
    import torch

    from .inference import Transcriber

    torch.set_num_threads(1)
    if separator is not None:
        from .separation import DrumSeparator

        transcriber_kwargs = {**transcriber_kwargs, "separator": DrumSeparator.load(separator[0], weights=separator[1])}
    _WORKER["transcriber"] = Transcriber.load(**transcriber_kwargs)


def transcribe_job(job: Job) -> JobResult:
    """Transcribe one song in a worker and write its files; errors come back as one line."""
    from .beats import BeatTrackingError
    from .features import AudioError, load_audio
    from .writers import write_score

    transcriber = _WORKER["transcriber"]
    warnings: list[str] = []
    try:
        audio = load_audio(job.audio, warn=warnings.append)
        score, heard = transcriber.transcribe_audio(audio)
        score.meta["source"] = str(job.audio)
        for path in job.outputs:
            write_score(score, path)
        if job.stem_file is not None and transcriber.separator is not None:
            from .cli import write_stem

            write_stem(heard, job.stem_file)
        return JobResult(job.audio, job.outputs, None, tuple(warnings), int(score.onsets.sum()), len(score.beats.times))
    except (AudioError, BeatTrackingError, OSError, ValueError) as exc:
        message = str(exc) if str(job.audio) in str(exc) else f"{job.audio}: {exc}"
        return JobResult(job.audio, job.outputs, message, tuple(warnings))
