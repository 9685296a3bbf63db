"""One song's job as a worker runs it: load the models once per worker process, transcribe, write.

The engines (engines.py) hand jobs to workers: in this process, in a pool of processes (`--jobs N`) or
on a Ray cluster (`--engine ray`); the parent only plans, reports progress and keeps the manifest.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .writers.outputs import Job

_WORKER: dict[str, Any] = {}


@dataclass(frozen=True)
class JobResult:
    audio: Path
    outputs: tuple[Path, ...]
    error: str | None = None
    warnings: tuple[str, ...] = ()
    onsets: int = 0
    beats: int = 0
    fatal: bool = False  # the whole run must stop (bad --beats)
    seconds: float = 0.0  # wall time of the job in its worker


def load_transcriber(transcriber_kwargs: dict, separator: tuple[str, Path | None] | None):
    """The transcriber (and separator) a worker process uses for all its songs, with one thread each (the
    exported CRNN's sessions have one already)."""
    import sys

    from .inference import Transcriber

    if separator is not None:
        from .separation import DrumSeparator

        transcriber_kwargs = {**transcriber_kwargs, "separator": DrumSeparator.load(separator[0], weights=separator[1])}
    transcriber = Transcriber.load(**transcriber_kwargs)
    if "torch" in sys.modules:  # a separator, or a torch model file (the `train` extra)
        sys.modules["torch"].set_num_threads(1)
    return transcriber


def init_worker(transcriber_kwargs: dict, separator: tuple[str, Path | None] | None) -> None:
    """A pool worker's initializer: load the transcriber once per process."""
    _WORKER["transcriber"] = load_transcriber(transcriber_kwargs, separator)


def write_stem(audio, path: Path) -> None:
    """The separated drums as a wav, written atomically like the scores."""
    import soundfile as sf

    from .writers import atomic_path

    with atomic_path(path) as tmp:
        sf.write(tmp, audio, 44100, format="WAV")


def run_job(transcriber, job: Job, beats=None, beats_file: Path | None = None, stage=None) -> JobResult:
    """Transcribe one song and write its files, timed; a bad file comes back as one line in `error`.

    Given beats that miss the audio are the beats file's fault, not the song's: `fatal` is then set.
    """
    started = time.perf_counter()
    result = _run_job(transcriber, job, beats, beats_file, stage)
    return replace(result, seconds=round(time.perf_counter() - started, 3))


def _run_job(transcriber, job: Job, beats, beats_file: Path | None, stage) -> JobResult:
    from .beats import BeatTrackingError, check_beats_cover
    from .features import AudioError, load_audio
    from .writers import write_score

    stage = stage or (lambda name: None)
    warnings: list[str] = []
    try:
        stage("decoding")
        audio = load_audio(job.audio, warn=warnings.append)
        if beats is not None:
            try:
                check_beats_cover(beats, len(audio) / 44100)
            except ValueError as exc:
                return JobResult(job.audio, job.outputs, f"{beats_file}: {exc}", tuple(warnings), fatal=True)
        score, heard = transcriber.transcribe_audio(audio, beats, stage)
        score.meta["source"] = job.source or str(job.audio)
        stage("writing")
        for path in job.outputs:
            write_score(score, path)
        if job.stem_file is not None and transcriber.separator is not None:
            write_stem(heard, job.stem_file)
        return JobResult(job.audio, job.outputs, None, tuple(warnings), int(score.onsets.sum()), len(score.beats.times))
    except (AudioError, BeatTrackingError, OSError, ValueError) as exc:
        name = job.source or str(job.audio)
        message = str(exc).replace(str(job.audio), name) if str(job.audio) in str(exc) else f"{name}: {exc}"
        return JobResult(job.audio, job.outputs, message, tuple(warnings))


def transcribe_job(job: Job) -> JobResult:
    """`run_job` in a pool worker, with the transcriber `init_worker` loaded."""
    return run_job(_WORKER["transcriber"], job)
