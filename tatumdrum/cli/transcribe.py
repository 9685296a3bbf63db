"""`tatumdrum transcribe`: songs in, scores out, one song or a whole library."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

from .. import interrupt
from .common import app, console, fail, Separation, check_input_kind, progress_bar, load_separator, threshold_option, check_threshold_drums


@app.command()
def transcribe(
    inputs: list[Path] = typer.Argument(..., help="Audio files or folders (wav, flac, ogg, mp3)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="Output file (its suffix picks the format) or, for several inputs, a folder."),
    formats: str = typer.Option("mid", "--format", "-f", help="Formats for folder output: mid, musicxml, json, png (comma-separated)."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="A model file; default: the bundled model."),
    tatums_per_beat: int = typer.Option(4, "--tatums-per-beat", min=1, max=12, help="Tatums per beat (4 = 16th notes)."),
    threshold: Optional[str] = typer.Option(None, "--threshold", help="One onset threshold for every drum (0.3), or "
                                            "some drums' over the model's own (TT=0.75,CY=0.5); default: the model's own, per drum."),
    separation: Separation = typer.Option(Separation.none, "--separation",
                                          help="none (default): transcribe the mixture, which the bundled model "
                                          "does best; auto: separate the drums first with the best separator "
                                          "here, never downloading; required: separate with --separator or fail."),
    separator_model: Optional[str] = typer.Option(None, "--separator", help="Open-Unmix drums separator: bundled "
                                                  "(the project's own), umxl or umxhq (official, downloaded weights)."),
    separator_weights: Optional[Path] = typer.Option(None, "--separator-weights", help="Local Open-Unmix weights (file or folder)."),
    save_stems: Optional[Path] = typer.Option(None, "--save-stems", help="Folder to write the drum stem the model heard."),
    beats_file: Optional[Path] = typer.Option(None, "--beats", help="Given beats (time and bar position per line) instead of tracking."),
    meter: str = typer.Option("tracked", "--meter", help="Bars: tracked (the beat tracker's), auto (tracked, "
                              "corrected by the drums), or N/4 to force a meter, e.g. 4/4."),
    downbeat_shift: int = typer.Option(0, "--downbeat-shift", help="Move every bar line this many beats later "
                                       "(negative: earlier)."),
    input_kind: str = typer.Option("auto", "--input", help="For a model file with a stem model (`tatumdrum route`): "
                                   "auto tells drum stems from mixes by their sound; stem or mix says which."),
    n_jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, help="Songs transcribed at once (worker "
                                         "processes, each loading the models once); with --engine ray, default: "
                                         "the cluster's CPUs; else 1."),
    engine: str = typer.Option("local", "--engine", help="local (this machine) or ray (a Ray cluster; "
                               "pip install 'tatumdrum[ray]')."),
    address: Optional[str] = typer.Option(None, "--address", help="With --engine ray: the cluster to join "
                                          "(e.g. 10.0.0.1:6379 or auto); default: a local cluster."),
    plot: bool = typer.Option(False, "--plot", help="Also write a PNG picture of each transcription beside its score."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace outputs that exist (default: refuse before any work)."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Keep outputs that exist and skip their "
                                       "inputs (resume an interrupted folder run)."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help="Append one JSON line per input (status, "
                                            "error, seconds, outputs, model, options) as each song finishes."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print errors only."),
) -> None:
    """Transcribe the drums of songs into scores on their own beat grid."""
    from ..writers.outputs import OutputPlanError, check_jobs, plan_jobs, split_finished
    from ..writers import UnsupportedFormatError, check_output_path

    if overwrite and skip_existing:
        fail("--overwrite and --skip-existing: choose one (replace outputs that exist, or keep them)", 2)
    if engine not in ("local", "ray"):
        fail(f"--engine {engine}: choose local or ray", 2)
    if address is not None and engine != "ray":
        fail("--address names a Ray cluster: use it with --engine ray", 2)
    fmt_list = [f.strip() for f in formats.split(",") if f.strip()]
    if plot and "png" not in fmt_list:
        fmt_list.append("png")
    from ..meter import MeterError, parse_meter

    forced_meter = None
    if meter not in ("auto", "tracked"):
        try:
            forced_meter = parse_meter(meter)
        except MeterError as exc:
            fail(str(exc), 2)
    check_input_kind(input_kind)
    # A missing or unreadable input in a list is that file's failure; the others are still transcribed.
    unreadable = {path: _unreadable(path) for path in inputs if _unreadable(path)}
    if len(unreadable) == len(inputs):
        fail(next(iter(unreadable.values())))
    several = len(inputs) > 1 or any(p.is_dir() for p in inputs)
    if several and output is not None and output.suffix and not output.is_dir():
        fail(f"several inputs need an output folder, not the file {output}", 2)
    try:
        jobs = plan_jobs([p for p in inputs if p not in unreadable], output, fmt_list, save_stems)
        for job in jobs:
            for p in job.outputs:
                check_output_path(p)
        check_jobs(jobs, overwrite, skip_existing)
        _check_manifest_path(manifest, jobs)
    except UnsupportedFormatError as exc:
        fail(str(exc), 2)
    except OutputPlanError as exc:
        fail(str(exc))
    if beats_file is not None and len(jobs) > 1:
        fail("--beats gives one song's beats: use it with a single input file", 2)

    from ..beats import read_beats_tsv
    from ..inference import Transcriber
    from ..weights import ModelFileError

    try:
        beats = read_beats_tsv(beats_file) if beats_file else None
    except (OSError, ValueError) as exc:
        fail(f"{beats_file}: cannot read beats ({exc})")
    from ..engines import EngineError, run_pool, run_ray
    from ..manifest import Manifest
    from ..writers.outputs import remove_partial_files

    thresholds = threshold_option(threshold)
    settings = dict(model_path=model, tatums_per_beat=tatums_per_beat, threshold=thresholds, meter=forced_meter,
                    correct_bars=meter == "auto", downbeat_shift=downbeat_shift, input_kind=input_kind)
    try:
        try:
            with interrupt.deferred():  # Ctrl-C while the models load is raised once they are loaded
                transcriber = Transcriber.load(**settings,
                                               separator=load_separator(separation, separator_model, separator_weights))
        except ModelFileError as exc:
            fail(str(exc))
        check_threshold_drums(threshold, thresholds, transcriber.model)
        sep = transcriber.separator
        if save_stems is not None and sep is None:
            console.print("[yellow]warning:[/] no separator is active, so --save-stems has nothing to write")
            jobs = [replace(job, stem_file=None) for job in jobs]
        todo, finished = split_finished(jobs) if skip_existing else (jobs, [])
        separator = None if sep is None else (sep.source if separator_weights is None else "bundled", separator_weights)
        options = dict(formats=fmt_list, tatums_per_beat=tatums_per_beat, threshold=threshold,
                       separation=None if sep is None else sep.source, meter=meter, downbeat_shift=downbeat_shift,
                       input=input_kind, beats=None if beats_file is None else str(beats_file), engine=engine)
        with Manifest(manifest, transcriber.model.info.get("name", "custom"), options) as record:
            for path, error in unreadable.items():
                record.record(path, (), "failed", error)
            for job in finished:
                record.record(job.audio, job.files, "skipped")
            if engine == "ray":
                results = run_ray(todo, settings, separator, address, n_jobs)
            elif (n_jobs or 1) > 1 and len(todo) > 1 and beats is None:
                results = run_pool(todo, settings, separator, min(n_jobs, len(todo)))
            else:
                results = None
            failures = _run_jobs(todo, results, transcriber, beats, beats_file, record,
                                 dict(skipped=len(finished), failed=len(unreadable)), quiet)
    except EngineError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        # Writers replace their output only when complete; a worker stopped mid-write leaves a
        # temporary file at most, which is removed here. main() says "interrupted".
        remove_partial_files(jobs)
        raise
    for path, error in unreadable.items():
        console.print(f"[bold red]error:[/] {error}", highlight=False)
    total = len(jobs) + len(unreadable)
    if not quiet and (total > 1 or finished):
        console.print(f"{len(todo) - failures} transcribed, {len(finished)} skipped (outputs exist), "
                      f"{failures + len(unreadable)} failed, of {total} file(s)", highlight=False)
    if failures or unreadable:
        fail(f"{failures + len(unreadable)} of {total} file(s) failed")


def _unreadable(path: Path) -> str | None:
    """Why an input cannot be read, or None."""
    import os

    if not path.exists():
        return f"{path}: no such file or folder"
    if not os.access(path, os.R_OK):
        return f"{path}: not readable (permission denied)"
    return None


def _check_manifest_path(manifest: Optional[Path], jobs) -> None:
    """The manifest is neither an input nor an output, and its folder can be written: checked before any work."""
    from ..writers.outputs import OutputPlanError, check_writable_folder

    if manifest is None:
        return
    key = manifest.resolve()
    for job in jobs:
        if key == job.audio.resolve() or key in {p.resolve() for p in job.files}:
            raise OutputPlanError(f"--manifest {manifest}: is also an input or output of this run")
    if manifest.is_dir():
        raise OutputPlanError(f"--manifest {manifest}: is a folder, not a file")
    check_writable_folder(manifest, manifest)


def _run_jobs(jobs, results, transcriber, beats, beats_file: Optional[Path], record, counts: dict,
              quiet: bool) -> int:
    """Run the jobs (in this process when `results` is None, else from an engine), showing progress and
    recording each song in the manifest as it finishes; a bad file never stops the rest. Returns the failures."""
    from ..engines import run_local

    failures = 0
    with progress_bar(quiet) as progress:
        task = progress.add_task("transcribing", total=len(jobs), status="")

        def status(current: str = "") -> str:
            done = progress.tasks[0].completed
            counts_text = f"{done - failures} done, {failures + counts['failed']} failed, {counts['skipped']} skipped"
            return f"{counts_text}  {current}".rstrip()

        def stage_for(job):
            return lambda name: progress.update(task, status=status(f"{job.audio.name}: {name}"))

        progress.update(task, status=status())
        if results is None:
            results = run_local(jobs, transcriber, beats, beats_file, stage_for)
        try:
            for done, (job, result) in enumerate(results, 1):
                if result.error is not None and (result.fatal or len(jobs) == 1 and not counts["failed"]
                                                 and not counts["skipped"]):
                    for warning in result.warnings:
                        progress.console.print(f"[yellow]warning:[/] {warning}", highlight=False)
                    record.record(job.audio, job.files, "failed", result.error, result.seconds)
                    fail(result.error)
                failures += _report(progress, job, result, quiet)
                record.record(job.audio, job.files, "ok" if result.error is None else "failed", result.error,
                              result.seconds)
                progress.advance(task)
                progress.update(task, status=status())
                if done < len(jobs):
                    interrupt.check()  # after the song's record, so that a resumed run knows it is done
                else:
                    # Every output is written and reported: a late Ctrl-C must not call the run interrupted.
                    interrupt.finished()
        finally:
            close = getattr(results, "close", None)
            if close is not None:
                close()  # an engine's generator stops its workers here, also on Ctrl-C
    return failures


def _report(progress, job, result, quiet: bool) -> bool:
    """Print one song's warnings and its result line; True if it failed."""
    for warning in result.warnings:
        progress.console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if result.error is not None:
        progress.console.print(f"[bold red]error:[/] {result.error}", highlight=False)
    elif not quiet:
        progress.console.print(f"[green]✓[/] {job.audio} → {', '.join(map(str, job.outputs))} "
                               f"({result.onsets} onsets, {result.beats} beats)", highlight=False)
    return result.error is not None
