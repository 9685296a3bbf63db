"""Where each input's outputs go, checked before any work so that no file is ever lost.

A batch mirrors its input folders under `-o` (songs/a/x.wav -> out/a/x.mid), so two songs of
the same name never write one file. Before anything is transcribed, every planned output is
checked: no two inputs share an output, no input is an output, nothing existing is replaced
without `--overwrite` (or kept with `--skip-existing`), and each output's folder exists or can be
made, and is writable.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".m4a", ".opus"}


class OutputPlanError(ValueError):
    """A planned output that would lose a file or cannot be written; the message names the path."""


@dataclass(frozen=True)
class Job:
    """One input and the files it becomes."""

    audio: Path
    outputs: tuple[Path, ...]
    stem_file: Path | None = None  # where --save-stems writes the separated drums
    # The input as the user named it, for the score's "source": a job sent to another machine carries
    # absolute paths, and its files must still be the same bytes as a local run's.
    source: str | None = None

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file this job writes."""
        return self.outputs + ((self.stem_file,) if self.stem_file else ())

    def absolute(self) -> "Job":
        """The same job with absolute paths, for a worker whose working folder is not ours."""
        return Job(self.audio.absolute(), tuple(p.absolute() for p in self.outputs),
                   self.stem_file.absolute() if self.stem_file else None, self.source or str(self.audio))


def collect_inputs(inputs: list[Path]) -> list[tuple[Path, Path]]:
    """(audio file, path relative to its input folder) for every input; a file given alone is its own name."""
    found: list[tuple[Path, Path]] = []
    for path in inputs:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if not files:
                raise OutputPlanError(f"{path}: no audio files in this folder ({', '.join(sorted(AUDIO_SUFFIXES))})")
            found += [(f, f.relative_to(path)) for f in files]
        else:
            found.append((path, Path(path.name)))
    return found


def plan_jobs(inputs: list[Path], output: Path | None, formats: list[str], save_stems: Path | None = None
              ) -> list[Job]:
    """Each input's output paths: `-o file.ext` for one file, else `<-o or beside the input>/<relative path>.<fmt>`."""
    found = collect_inputs(inputs)
    single = len(found) == 1 and not inputs[0].is_dir()
    jobs = []
    for audio, rel in found:
        if single and output is not None and output.suffix and not output.is_dir():
            # `--plot` with `-o song.mid` adds song.png beside it.
            outputs: tuple[Path, ...] = (output,) + tuple(output.with_suffix(f".{fmt}") for fmt in formats
                                                         if fmt == "png" and output.suffix.lower() != ".png")
        else:
            base = (output / rel) if output is not None else audio
            outputs = tuple(base.with_name(f"{base.stem}.{fmt.lstrip('.')}") for fmt in formats)
        stem_file = None
        if save_stems is not None:
            stem_file = (save_stems / rel).with_name(f"{rel.stem}_drums.wav")
        jobs.append(Job(audio, outputs, stem_file))
    return jobs


def check_writable_folder(path: Path, given: Path) -> None:
    """The folder of `path` exists and is writable, or its first existing ancestor is (so it can be made)."""
    folder = path.parent if str(path.parent) else Path(".")
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise OutputPlanError(f"{given}: cannot write here, {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputPlanError(f"{given}: cannot write here, {probe} is not writable")


def check_jobs(jobs: list[Job], overwrite: bool, skip_existing: bool = False) -> None:
    """Raise OutputPlanError, naming the path the user gave, for the first planned output that would lose a file.

    With `skip_existing` an existing output is no error: `split_finished` keeps it untouched.
    """
    inputs = {j.audio.resolve(): j.audio for j in jobs}
    seen: dict[Path, Path] = {}
    for job in jobs:
        for out in job.files:
            key = out.resolve()
            if key in inputs:
                raise OutputPlanError(f"{out}: this output is the input {inputs[key]}; choose another -o")
            if key in seen:
                raise OutputPlanError(f"{out}: both {seen[key]} and {job.audio} would be written here")
            seen[key] = job.audio
            if out.is_dir():
                raise OutputPlanError(f"{out}: is a folder, not a file")
            if out.exists() and not (overwrite or skip_existing):
                raise OutputPlanError(f"{out}: exists; use --overwrite to replace it or --skip-existing to keep it")
            check_writable_folder(out, out)


def split_finished(jobs: list[Job]) -> tuple[list[Job], list[Job]]:
    """(jobs still to run, each writing only its missing files; jobs whose files all exist).

    Writes are atomic (writers.atomic_path), so an existing output is a finished one and is kept as it is.
    """
    todo, finished = [], []
    for job in jobs:
        if all(p.exists() for p in job.files):
            finished.append(job)
            continue
        stem = job.stem_file if job.stem_file is not None and not job.stem_file.exists() else None
        todo.append(replace(job, outputs=tuple(p for p in job.outputs if not p.exists()), stem_file=stem))
    return todo, finished


def remove_partial_files(jobs: list[Job]) -> None:
    """Delete temporary files an interrupted writer left beside the planned outputs (see writers.atomic_path)."""
    for job in jobs:
        for out in job.files:
            if out.parent.is_dir():
                for tmp in out.parent.glob(f".{out.name}.*.tmp"):
                    tmp.unlink(missing_ok=True)
