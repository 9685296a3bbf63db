"""The `tatumdrum` command line: a thin layer over inference, training and evaluation."""
from __future__ import annotations

from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .input_kind import STEM_PERCUSSIVENESS

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Tatum-level drum transcription: audio in, drum score out (MIDI, MusicXML, JSON).")


def _version(value: bool) -> None:
    if value:
        from . import __version__

        console.print(f"tatumdrum {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")) -> None:
    """Tatum-level drum transcription: audio in, drum score out (MIDI, MusicXML, JSON)."""


separator_app = typer.Typer(no_args_is_help=True, help="Manage the Open-Unmix drum separator's weights.")
app.add_typer(separator_app, name="separator")
console = Console(stderr=True, soft_wrap=True)  # an error stays one line, whatever the width



class Separation(str, Enum):
    auto = "auto"
    required = "required"
    none = "none"


def fail(message: str, code: int = 1) -> None:
    """One clear line on stderr and a non-zero exit: users never see a traceback."""
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _class_list(option: str, text: str) -> tuple[str, ...]:
    """Drum classes from a comma-separated option, or one error line naming the option and the known classes."""
    from .instruments import ALL_INSTRUMENTS, instruments_from_abbrevs

    abbrevs = tuple(a.strip() for a in text.split(",") if a.strip())
    try:
        instruments_from_abbrevs(abbrevs)
    except KeyError:
        fail(f"{option}: unknown class in {text!r} (known: {', '.join(i.abbrev for i in ALL_INSTRUMENTS)})", 2)
    return abbrevs


def _class_weights(option: str, text: str) -> dict[str, float]:
    """CLASS=WEIGHT pairs from a comma-separated option, or one error line naming the option."""
    weights: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        name, _, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if not name.strip() or weight != weight:
            fail(f"{option}: {item!r} is not CLASS=WEIGHT (e.g. SS=8)", 2)
        if not weight > 0:
            fail(f"{option}: the weight in {item!r} must be positive", 2)
        weights[_class_list(option, name)[0]] = weight
    return weights


def _level_range(option: str, text: str) -> tuple[float, float]:
    """LOW,HIGH in dB, or one error line naming the option."""
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        fail(f"{option}: {text!r} is not LOW,HIGH in dB (e.g. -22,6)", 2)
    if not low <= high:
        fail(f"{option}: {text!r}: LOW must not exceed HIGH", 2)
    return low, high


def _check_device(device: str) -> None:
    """--device: cpu, or a CUDA device that is there."""
    import torch

    try:
        kind = torch.device(device).type
    except RuntimeError:
        fail(f"--device {device}: not a device; give cpu or cuda")
    if kind not in ("cpu", "cuda"):
        fail(f"--device {device}: give cpu or cuda")
    if kind == "cuda" and not torch.cuda.is_available():
        fail(f"--device {device}: no CUDA device is available here")


def _check_new_output(out: Path, inputs: list[Path], what: str) -> None:
    """A model command never overwrites the model file it reads."""
    if any(out.resolve() == p.resolve() for p in inputs):
        fail(f"--out {out}: write {what} to a new file")


def _sources(option: str, text: str) -> tuple[str, ...]:
    src = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in src if s not in ("drums", "mix")]
    if bad or not src:
        fail(f"{option} {text}: choose drums, mix or both", 2)
    return src


def _check_input_kind(kind: str) -> None:
    from .input_kind import INPUT_KINDS

    if kind not in INPUT_KINDS:
        fail(f"--input {kind}: choose {', '.join(INPUT_KINDS)}", 2)


def _progress(quiet: bool = False) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, transient=True, disable=quiet)


def _choose_separator(mode: Separation, model: Optional[str], local: bool = False) -> Optional[str]:
    """Which separator a run uses: none, or "bundled", "umxl" or "umxhq".

    auto never downloads and never warns: official weights already in torch.hub's cache, else the
    bundled separator. required takes --separator (default bundled) and may download official weights.
    `local`: --separator-weights are given, so nothing needs to be cached.
    """
    if mode == Separation.none:
        return None
    from .separation import BUNDLED, SEPARATORS, cached

    if model is not None and model not in SEPARATORS:
        fail(f"--separator {model}: choose one of {', '.join(SEPARATORS)}")
    if mode == Separation.auto and model is None:
        return next((m for m in ("umxl", "umxhq") if cached(m)), BUNDLED)
    if mode == Separation.auto and not local and not cached(model):
        # An explicit --separator umxl with auto: use it only if it is here; say so once, never download.
        console.print(f"[yellow]warning:[/] Open-Unmix '{model}' weights are not cached — using the bundled "
                      "separator (`tatumdrum separator download` fetches them)", highlight=False)
        return BUNDLED
    return model or BUNDLED


def _load_separator(mode: Separation, model: Optional[str], weights: Optional[Path]):
    if mode == Separation.none:
        return None
    from .separation import DrumSeparator, SeparationUnavailable

    model = _choose_separator(mode, model, local=weights is not None)
    try:
        return DrumSeparator.load(model, weights=weights)
    except SeparationUnavailable as exc:
        if mode == Separation.required:
            fail(str(exc))
        console.print(f"[yellow]warning:[/] {exc} — transcribing the mixture without separation.", highlight=False)
        return None


def _train_with_progress(run: Callable[[Callable], dict], step_status: Callable[[dict], str],
                         epoch_summary: Callable[[dict], str]) -> dict:
    """Run a trainer that reports ("step" | "epoch", done, total, info): a progress bar over each epoch's
    steps and one printed line per epoch. Data errors end with one line."""
    with _progress() as progress:
        task = progress.add_task("training", total=None, status="")

        def report(event: str, done: int, total: int, info: dict) -> None:
            if event == "step":
                progress.update(task, description=f"epoch {info['epoch']}", completed=done, total=total,
                                status=step_status(info))
            else:
                progress.console.print(f"epoch {done}/{total}: {epoch_summary(info)}", highlight=False)

        try:
            return run(report)
        except (FileNotFoundError, ValueError) as exc:
            fail(str(exc))


@app.command()
def transcribe(
    inputs: list[Path] = typer.Argument(..., help="Audio files or folders (wav, flac, ogg, mp3)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="Output file (its suffix picks the format) or, for several inputs, a folder."),
    formats: str = typer.Option("mid", "--format", "-f", help="Formats for folder output: mid, musicxml, json, png (comma-separated)."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="A model file; default: the bundled model."),
    tatums_per_beat: int = typer.Option(4, "--tatums-per-beat", min=1, max=12, help="Tatums per beat (4 = 16th notes)."),
    threshold: Optional[str] = typer.Option(None, "--threshold", help="One onset threshold delta for every drum (0.3), or "
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
    meter: str = typer.Option("auto", "--meter", help="Bars: auto (tracked, corrected by the drums), tracked "
                              "(the beat tracker's as they are), or N/4 to force a meter, e.g. 4/4."),
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
    from .outputs import OutputPlanError, check_jobs, plan_jobs, split_finished
    from .writers import UnsupportedFormatError, check_output_path

    if overwrite and skip_existing:
        fail("--overwrite and --skip-existing: choose one (replace outputs that exist, or keep them)", 2)
    if engine not in ("local", "ray"):
        fail(f"--engine {engine}: choose local or ray", 2)
    if address is not None and engine != "ray":
        fail("--address names a Ray cluster: use it with --engine ray", 2)
    fmt_list = [f.strip() for f in formats.split(",") if f.strip()]
    if plot and "png" not in fmt_list:
        fmt_list.append("png")
    from .meter import MeterError, parse_meter

    forced_meter = None
    if meter not in ("auto", "tracked"):
        try:
            forced_meter = parse_meter(meter)
        except MeterError as exc:
            fail(str(exc), 2)
    _check_input_kind(input_kind)
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

    from .beats import read_beats_tsv
    from .inference import Transcriber
    from .weights import ModelFileError

    try:
        beats = read_beats_tsv(beats_file) if beats_file else None
    except (OSError, ValueError) as exc:
        fail(f"{beats_file}: cannot read beats ({exc})")
    from .engines import EngineError, run_local, run_pool, run_ray
    from .manifest import Manifest
    from .outputs import remove_partial_files

    deltas = _threshold_option(threshold)
    settings = dict(model_path=model, tatums_per_beat=tatums_per_beat, threshold=deltas, meter=forced_meter,
                    correct_bars=meter == "auto", downbeat_shift=downbeat_shift, input_kind=input_kind)
    try:
        try:
            transcriber = Transcriber.load(**settings,
                                           separator=_load_separator(separation, separator_model, separator_weights))
        except ModelFileError as exc:
            fail(str(exc))
        _check_threshold_drums(threshold, deltas, transcriber.model)
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
    from .outputs import OutputPlanError, _writable_folder

    if manifest is None:
        return
    key = manifest.resolve()
    for job in jobs:
        if key == job.audio.resolve() or key in {p.resolve() for p in job.files}:
            raise OutputPlanError(f"--manifest {manifest}: is also an input or output of this run")
    if manifest.is_dir():
        raise OutputPlanError(f"--manifest {manifest}: is a folder, not a file")
    _writable_folder(manifest, manifest)


def _run_jobs(jobs, results, transcriber, beats, beats_file: Optional[Path], record, counts: dict,
              quiet: bool) -> int:
    """Run the jobs (in this process when `results` is None, else from an engine), showing progress and
    recording each song in the manifest as it finishes; a bad file never stops the rest. Returns the failures."""
    from .engines import run_local

    failures = 0
    with _progress(quiet) as progress:
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
            for job, result in results:
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


class ModelKind(str, Enum):
    tatum = "tatum"
    frame = "frame"


class LMKind(str, Enum):
    none = "none"
    bigram = "bigram"
    gru = "gru"


@app.command("build-dataset")
def build_dataset(
    gmd: Path = typer.Argument(..., help="The Groove MIDI Dataset folder (with info.csv)."),
    out: Path = typer.Argument(..., help="Output folder; pieces go to <out>/<split>/."),
    splits: str = typer.Option("train,validation,test", "--splits", help="Comma-separated GMD splits."),
    tatums_per_beat: int = typer.Option(4, "--tatums-per-beat", min=1, max=12),
    max_files: Optional[int] = typer.Option(None, "--max-files", help="At most this many files per split."),
    max_seconds: float = typer.Option(60.0, "--max-seconds", help="Crop each performance to its first N seconds."),
    stride: int = typer.Option(1, "--stride", min=1, help="Every N-th performance only (a small build that still "
                               "spreads over all drummers and styles)."),
    keep_audio: bool = typer.Option(False, "--keep-audio", help="Also write the rendered audio (needed by evaluate)."),
    workers: int = typer.Option(2, "--workers", min=1),
    seed: int = typer.Option(0, "--seed"),
    v2: bool = typer.Option(False, "--v2", help="Eight classes (side stick apart), velocities, separate drum "
                            "and band stems, varied playing and a record-like band (vocal, distorted guitar, "
                            "mastering)."),
    renders: int = typer.Option(1, "--renders", min=1, help="Render each performance this many times."),
    kit_dir: list[Path] = typer.Option([], "--kit-dir", help="A recorded multi-mic kit folder (MuldjordKit layout); repeatable."),
    piano_dir: list[Path] = typer.Option([], "--piano-dir", help="A folder of sampled piano notes; repeatable."),
    variation: list[str] = typer.Option([], "--variation", help="NAME=P: the probability of one playing variation "
                                        "per render (--v2), e.g. no_hats=0.3 for kick-and-snare grooves; repeatable."),
    drum_to_band: Optional[str] = typer.Option(None, "--drum-to-band", help="Drum-to-band level range in dB of the "
                                               "rendered mixes, as --drum-to-band=LOW,HIGH (default -9,3); e.g. "
                                               "-24,-10 for drums buried in the band."),
    band_percussion: float = typer.Option(0.0, "--band-percussion", min=0.0, max=1.0, help="Chance per render "
                                          "(--v2) of an unlabelled tambourine, cabasa or maracas part in the band."),
) -> None:
    """Render GMD drum MIDI (plus a generated accompaniment) to training pieces with tatum targets."""
    from .data.build import BuildOptions, build_split
    from .data.playing import VARIATION_PROBABILITY
    from .instruments import THREE_CLASSES, V2_CLASSES

    if not (gmd / "info.csv").is_file():
        fail(f"{gmd}: not the Groove MIDI Dataset (no info.csv)")
    for folder in [*kit_dir, *piano_dir]:
        if not folder.is_dir():
            fail(f"{folder}: no such folder")
    probabilities = []
    for item in variation:
        name, _, value = item.partition("=")
        try:
            p = float(value)
        except ValueError:
            p = -1.0
        if name not in VARIATION_PROBABILITY or not 0.0 <= p <= 1.0:
            fail(f"--variation {item}: give NAME=P with P in [0, 1] and NAME one of {', '.join(VARIATION_PROBABILITY)}", 2)
        probabilities.append((name, p))
    if probabilities and not v2:
        fail("--variation: playing variations come with --v2", 2)
    if band_percussion and not v2:
        fail("--band-percussion: the band's layers come with --v2", 2)
    levels = {"drum_to_band_db": _level_range("--drum-to-band", drum_to_band)} if drum_to_band else {}
    options = BuildOptions(instruments=tuple(i.abbrev for i in (V2_CLASSES if v2 else THREE_CLASSES)),
                           renders=renders, v2=v2, vary=v2, record_like=v2,
                           kit_dirs=tuple(str(d) for d in kit_dir), piano_dirs=tuple(str(d) for d in piano_dir),
                           variations=tuple(probabilities), band_percussion=band_percussion, **levels)
    for split in [s.strip() for s in splits.split(",") if s.strip()]:
        with _progress() as progress:
            task = progress.add_task(f"rendering {split}", total=None, status="")

            def report(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            stats = build_split(gmd, split, out, tatums_per_beat=tatums_per_beat, seed=seed, max_files=max_files,
                                max_seconds=max_seconds, workers=workers, keep_audio=keep_audio, progress=report, stride=stride,
                                options=options)
        ratios = stats.get("quantization", {})
        console.print(f"{split}: {stats.get('files')} pieces, {stats.get('seconds', 0) / 3600:.2f} h of audio; "
                      f"Table I ratios {ratios}", highlight=False)


@app.command()
def train(
    data: Path = typer.Argument(..., help="Folder made by build-dataset (with train/ and validation/)."),
    out: Path = typer.Option(Path("models/crnn.pt"), "--out", "-o", help="Where the best model is written."),
    kind: ModelKind = typer.Option(ModelKind.tatum, "--kind", help="tatum: the proposed CRNN; frame: the baseline."),
    lm: LMKind = typer.Option(LMKind.none, "--lm", help="Language-model regulariser (eq. 5)."),
    lm_path: Optional[Path] = typer.Option(None, "--lm-path", help="A language model file; default: the bundled one."),
    gamma: Optional[float] = typer.Option(None, "--gamma", help="Eq. 4 weight (paper: 0.46 bigram, 0.61 GRU, 1.0 none)."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Eq. 5 weight (paper: 0.068 bigram, 0.055 GRU)."),
    tau: float = typer.Option(0.2, "--tau", help="Gumbel-sigmoid temperature (eq. 8)."),
    gumbel_input: str = typer.Option("logit", "--gumbel-input", help="logit (a sample is 1 with probability phi) or prob (eq. 8 literally)."),
    epochs: int = typer.Option(10, "--epochs", min=1),
    steps_per_epoch: Optional[int] = typer.Option(None, "--steps-per-epoch", help="Default: one pass over the training tatums."),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    crop_tatums: int = typer.Option(64, "--crop-tatums", help="Tatums per training crop (64 = 4 bars of 4/4)."),
    crop_frames: int = typer.Option(1000, "--crop-frames", help="Frames per crop for --kind frame (100 per second)."),
    lr: float = typer.Option(1e-3, "--lr"),
    seed: int = typer.Option(0, "--seed"),
    channels: str = typer.Option("12,24", "--channels", help="Conv channels of the two encoder blocks."),
    gru_hidden: int = typer.Option(98, "--gru-hidden", help="GRU units per layer and direction (paper: 98)."),
    max_valid: int = typer.Option(30, "--max-valid", help="Validation pieces scored after each epoch."),
    threads: int = typer.Option(0, "--threads", help="Torch CPU threads (0: all cores)."),
    fresh: bool = typer.Option(False, "--fresh", help="Ignore an existing checkpoint instead of resuming it."),
    velocity_weight: float = typer.Option(0.5, "--velocity-weight", help="Weight of the velocity loss "
                                          "(pieces built with --v2 carry velocities); 0: no velocity head."),
    gru_layers: int = typer.Option(3, "--gru-layers", min=1, help="GRU layers of the decoder (paper: 3)."),
    lr_decay: bool = typer.Option(False, "--lr-decay", help="Cosine learning-rate decay over the epochs."),
    negatives: float = typer.Option(0.0, "--negatives", min=0.0, max=1.0,
                                    help="Share of crops without drums (band alone, steady noise or tones) "
                                    "and with an empty score."),
    balance: float = typer.Option(0.0, "--balance", min=0.0, max=1.0,
                                  help="Share of crops drawn class first (a class, then a crop holding one of its "
                                  "strokes), so rare classes are heard often."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Train on these classes (e.g. "
                                          "BD,SD,HH,OH,TT,CR,RD); the data's others fold into them."),
    init: Optional[Path] = typer.Option(None, "--init", help="Start from this model's weights (same sizes); "
                                        "a class it lacks starts as the class it folds into."),
    class_gamma: Optional[str] = typer.Option(None, "--class-gamma", help="Eq. 4's positive weight for some "
                                              "classes (e.g. SS=8,TT=2); the others keep --gamma."),
    remix_db: Optional[str] = typer.Option(None, "--remix-db", help="Drum-to-band level range in dB of the "
                                           "training remixes of v2 data, as --remix-db=LOW,HIGH (default -14,8)."),
    band_eq: float = typer.Option(0.0, "--band-eq", min=0.0, max=1.0, help="Share of training remixes whose band "
                                  "gets an EQ of its own (brighter or darker than the drums)."),
    keep_last: bool = typer.Option(False, "--keep-last", help="Write the last epoch to --out instead of the "
                                   "one the per-epoch validation check liked best."),
    device: str = typer.Option("cpu", "--device", help="cpu, or cuda where a GPU is available."),
) -> None:
    """Train a transcription model; resumes from <out>.ckpt if a run was interrupted."""
    import torch

    from .training import TrainConfig, train as run_training

    if threads:
        torch.set_num_threads(threads)
    _check_device(device)
    cfg = TrainConfig(data=str(data), out=str(out), kind=kind.value, lm=lm.value,
                      lm_path=str(lm_path) if lm_path else None, gamma=gamma, alpha=alpha, tau=tau,
                      gumbel_input=gumbel_input, epochs=epochs, steps_per_epoch=steps_per_epoch,
                      batch_size=batch_size, crop_tatums=crop_tatums, crop_frames=crop_frames, lr=lr, seed=seed, max_valid=max_valid,
                      channels=tuple(int(c) for c in channels.split(",")), gru_hidden=gru_hidden,
                      velocity_weight=velocity_weight, gru_layers=gru_layers, lr_decay=lr_decay,
                      negatives=negatives, init=str(init) if init else None, balance=balance,
                      classes=_class_list("--classes", classes) if classes else None,
                      class_gamma=_class_weights("--class-gamma", class_gamma) if class_gamma else None, band_eq=band_eq,
                      keep_last=keep_last, device=device, **({"remix_db": _level_range("--remix-db", remix_db)} if remix_db else {}))
    if init is not None:
        from .model import TatumEnsemble
        from .weights import ModelFileError, load_model

        try:
            start = load_model(init)
        except ModelFileError as exc:
            fail(f"--init: {exc}", 2)
        if isinstance(start.net, TatumEnsemble):
            fail(f"--init {init}: an ensemble of {len(start.net.members)} networks; start from one of them", 2)
        if start.stem_model is not None:
            fail(f"--init {init}: holds a mix model and a stem model; start from one of them", 2)
    state = _train_with_progress(
        lambda report: run_training(cfg, report, resume=not fresh),
        lambda info: f"L_tran {info['loss']:.4f}  L_lang {info['lang']:.4f}",
        lambda info: f"validation F {info['valid_f']:.3f} (best {info['best_f']:.3f})")
    written = f"epoch {state['epoch']}" if keep_last else "the best epoch"
    console.print(f"best validation F {state['best_f']:.3f}; {written} written to {out}")


@app.command("train-separator")
def train_separator_cmd(
    data: Path = typer.Argument(..., help="Folder made by build-dataset --v2 --keep-audio (train/ and validation/ "
                                "with *_clean_drums and *_band stems)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the separator (Open-Unmix layout) and its checkpoint."),
    hidden_size: int = typer.Option(128, "--hidden-size", min=8, help="Open-Unmix hidden size (umxhq: 512, umxl: 1024)."),
    epochs: int = typer.Option(10, "--epochs", min=1),
    steps_per_epoch: int = typer.Option(200, "--steps-per-epoch", min=1),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    seq_seconds: float = typer.Option(6.0, "--seq-seconds", min=0.5, help="Seconds of audio per example."),
    lr: float = typer.Option(1e-3, "--lr"),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("cpu", "--device", help="cpu, or cuda where a GPU is available."),
    threads: int = typer.Option(0, "--threads", help="Torch CPU threads (0: all cores)."),
    fresh: bool = typer.Option(False, "--fresh", help="Ignore an existing checkpoint instead of resuming it."),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="Stop after the epoch that passes "
                                                "this much training time."),
) -> None:
    """Train an Open-Unmix drum separator on rendered stems; resumes from <out>/drums.chkpnt."""
    import torch

    from .separator_training import SeparatorConfig, train_separator

    if threads:
        torch.set_num_threads(threads)
    _check_device(device)
    cfg = SeparatorConfig(data=str(data), out=str(out), hidden_size=hidden_size, epochs=epochs,
                          steps_per_epoch=steps_per_epoch, batch_size=batch_size, seq_seconds=seq_seconds, lr=lr,
                          seed=seed, device=device, max_minutes=max_minutes)
    state = _train_with_progress(
        lambda report: train_separator(cfg, report, resume=not fresh),
        lambda info: f"loss {info['loss']:.4f}",
        lambda info: f"validation SDR {info['valid_sdr']:.2f} dB (best {info['best_sdr']:.2f})")
    console.print(f"best validation SDR {state['best_sdr']:.2f} dB; separator written to {out}")


@app.command("tune-thresholds")
def tune_thresholds(
    model_path: Path = typer.Argument(..., help="The model file to tune."),
    out: Path = typer.Option(..., "--out", "-o", help="Where the model with per-drum thresholds is written."),
    valid: Optional[Path] = typer.Option(None, "--valid", help="Rendered validation pieces (build-dataset's validation/)."),
    recordings: Optional[Path] = typer.Option(None, "--recordings", help="Annotated recordings (MDB Drums layout), "
                                              "transcribed with their annotated beats."),
    max_pieces: int = typer.Option(124, "--max-pieces", min=1, help="Rendered pieces used (first renders)."),
    sources: str = typer.Option("drums,mix", "--sources", help="Which audio to tune on: drums, mix (a stem "
                                "model on drums, the mix model on mix)."),
    given: Optional[list[str]] = typer.Option(None, "--given", help="GROUP:DRUM, e.g. HH:SS: also choose a higher "
                                              "delta for GROUP's drums on the tatums where DRUM is written (or "
                                              "none, if none helps); repeatable."),
) -> None:
    """Choose each drum's onset threshold on validation data: the best mean F over the given sets."""
    from .thresholds import DELTAS, recorded_items, rendered_items, tune, tune_given
    from .weights import ModelFileError, load_model

    _check_new_output(out, [model_path], "the tuned model")
    src = _sources("--sources", sources)
    try:
        model = load_model(model_path)
    except (ModelFileError, FileNotFoundError) as exc:
        fail(str(exc))
    if model.stem_model is not None:
        fail(f"{model_path}: holds a mix model and a stem model; tune each on its own audio (--sources mix, "
             "--sources drums) and join them with `tatumdrum route`")
    pairs = [_given_pair(g, model.instruments) for g in given or []]
    sets = {}
    if valid is not None:
        if not any(valid.glob("*.npz")):
            fail(f"--valid {valid}: no build-dataset pieces (.npz) here")
        sets["rendered"] = lambda: rendered_items(model, valid, max_pieces, src)
    if recordings is not None:
        if not recordings.is_dir():
            fail(f"--recordings {recordings}: not a folder")
        sets["recordings"] = lambda: recorded_items(model, recordings, src)
    if not sets:
        fail("give --valid, --recordings or both")
    with console.status("scoring thresholds on the validation data"):
        # Computed once: the given thresholds are scored on the same phi.
        items = {name: list(make()) for name, make in sets.items()}
        thresholds, chosen, sweeps = tune(model, {name: (lambda i=i: i) for name, i in items.items()})
    for group, (delta, f) in chosen.items():
        per_set = ", ".join(f"{name} {100 * s[delta][group].f_measure:.1f}" for name, s in sweeps.items()
                            if group in s[delta])
        console.print(f"{group}: delta {delta:.2f} (mean F {100 * f:.1f}: {per_set})", highlight=False)
    rules = []
    for group, drum in pairs:
        with console.status(f"scoring {group} on the tatums with {drum}"):
            found, f, f_without = tune_given(items, model.instruments, thresholds, group, drum)
        said = f"delta {found[0][2]:.2f}" if found else "no rule"
        console.print(f"{group} where {drum} is written: {said} (mean {group} F {100 * f:.1f}, without "
                      f"{100 * f_without:.1f})", highlight=False)
        rules += found
    model.given_thresholds = tuple(rules)
    model.class_thresholds = thresholds
    model.info = {**model.info, "class_thresholds_from": sorted(sets), "class_thresholds_sources": list(src),
                  "deltas_tried": list(DELTAS)}
    model.save(out)
    extra = "".join(f", {d} where {g} is written {t}" for d, g, t in model.given_thresholds)
    console.print(f"thresholds {dict(zip((i.abbrev for i in model.instruments), thresholds))}{extra} written to {out}",
                  highlight=False)


def _threshold_option(text: str | None) -> float | dict[str, float] | None:
    from .decisions import parse_threshold_option

    if text is None:
        return None
    try:
        return parse_threshold_option(text)
    except ValueError as exc:
        fail(f"--threshold {text}: {exc}", 2)


def _check_threshold_drums(text: str | None, deltas: object, model: object) -> None:
    """Per-drum --threshold names, checked against the loaded model's drums before any work."""
    from .decisions import with_overrides

    if isinstance(deltas, dict):
        try:
            with_overrides(model.instruments, model.thresholds(), deltas)
        except ValueError as exc:
            fail(f"--threshold {text}: {exc}", 2)


def _given_pair(text: str, instruments: tuple) -> tuple[str, str]:
    """--given GROUP:DRUM, checked against the model's drums."""
    groups = {i.group for i in instruments}
    drums = {i.abbrev for i in instruments}
    group, _, drum = text.partition(":")
    if group not in groups or drum not in drums:
        fail(f"--given {text}: give GROUP:DRUM with a scoring group of this model ({', '.join(sorted(groups))}) "
             f"and one of its drums ({', '.join(sorted(drums))}), e.g. HH:SS")
    if any(i.abbrev == drum and i.group == group for i in instruments):
        fail(f"--given {text}: {drum} is one of {group}'s own drums")
    return group, drum


@app.command("ensemble")
def ensemble_cmd(
    models: list[Path] = typer.Argument(..., help="Two or more tatum model files with the same drum classes."),
    out: Path = typer.Option(..., "--out", "-o", help="Where the ensemble model is written."),
) -> None:
    """Average several models' onset probabilities in one model file; tune its thresholds next."""
    from .weights import ModelFileError, ensemble, load_model

    if len(models) < 2:
        fail("give two or more model files to average")
    _check_new_output(out, models, "the ensemble")
    try:
        model = ensemble([load_model(m) for m in models], [m.name for m in models])
    except ModelFileError as exc:
        fail(str(exc))
    model.save(out)
    deltas = dict(zip((i.abbrev for i in model.instruments), model.class_thresholds))
    console.print(f"{len(model.net.members)} networks written to {out}; thresholds (the members' mean) {deltas}. "
                  f"Choose them anew: tatumdrum tune-thresholds {out} -o TUNED.pt --valid ... --recordings ...",
                  highlight=False)


@app.command("route")
def route_cmd(
    mix: Path = typer.Argument(..., help="The model for mixes, and for every file that is not a drum stem."),
    stem: Path = typer.Option(..., "--stem", help="The model for drum stems."),
    out: Path = typer.Option(..., "--out", "-o", help="Where the joined model is written."),
    percussiveness: float = typer.Option(STEM_PERCUSSIVENESS, "--percussiveness", min=0.0,
                                         help="From this percussiveness (tatumdrum/input_kind.py) a file is a drum stem."),
) -> None:
    """Join a mix model and a stem model in one file; each file is heard by the one its sound calls for."""
    from .weights import ModelFileError, load_model, with_stem_model

    _check_new_output(out, [mix, stem], "the joined model")
    try:
        model = with_stem_model(load_model(mix), load_model(stem), (mix.name, stem.name), percussiveness)
    except ModelFileError as exc:
        fail(str(exc))
    model.save(out)
    console.print(f"{out}: {mix.name} for mixes, {stem.name} for drum stems (percussiveness >= {percussiveness})",
                  highlight=False)


@app.command()
def evaluate(
    annotations: Path = typer.Argument(..., help="MDB-style track folders, or rendered pieces with --keep-audio audio."),
    models: Optional[list[Path]] = typer.Option(None, "--model", "-m",
                                                help="Model file(s); repeat to compare (Table II). Default: the bundled model."),
    sources: str = typer.Option("drums,mix", "--sources", help="Which audio to transcribe: drums, mix."),
    separation: Separation = typer.Option(Separation.none, "--separation",
                                          help="Separate the drums before transcribing, as `transcribe` does."),
    separator_model: Optional[str] = typer.Option(None, "--separator", help="bundled, umxl or umxhq."),
    beats: str = typer.Option("estimated,given", "--beats", help="Beat conditions: estimated (madmom), given."),
    threshold: Optional[str] = typer.Option(None, "--threshold", help="As in transcribe: 0.3, or TT=0.75,CY=0.5."),
    max_tracks: Optional[int] = typer.Option(None, "--max-tracks", help="Evaluate only the first N tracks."),
    transcriptions: Optional[Path] = typer.Option(None, "--transcriptions",
                                                  help="Score existing transcriptions (<track>.mid or .json) instead of a model."),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write the tables (Markdown) here."),
    input_kind: str = typer.Option("auto", "--input", help="auto, stem or mix: which of a model's two models "
                                   "hears the audio (as in transcribe)."),
    per_track: bool = typer.Option(False, "--per-track", help="Also a table per model with each track's F, false "
                                   "positives and misses per instrument."),
) -> None:
    """Score models against annotations: P/R/F at 50 ms per instrument and summed (Table II)."""
    from .beats import BeatTracker
    from .evaluation import (evaluate as run_evaluation, evaluate_transcriptions, find_tracks, per_track_markdown,
                             table2_markdown, table_markdown)
    from .inference import Transcriber
    from .weights import ModelFileError

    _check_input_kind(input_kind)
    src = _sources("--sources", sources)
    deltas = _threshold_option(threshold)
    try:
        tracks = find_tracks(annotations)[:max_tracks]
        if transcriptions is not None:
            by_track: dict = {}
            counts = evaluate_transcriptions(transcriptions, tracks, by_track)
            print(table_markdown({("transcriptions", "-"): counts}, f"{transcriptions} against {annotations}"))
            if per_track:
                print("\n" + per_track_markdown(by_track, f"{transcriptions}, per track"))
            return
    except FileNotFoundError as exc:
        fail(str(exc))
    cond = tuple(s.strip() for s in beats.split(",") if s.strip())
    model_paths: list[Optional[Path]] = list(models) if models else [None]
    tracker = BeatTracker()
    results = {}
    texts = []
    beat_cache: dict = {}
    with _progress() as progress:
        task = progress.add_task("evaluating", total=len(model_paths) * len(tracks) * len(src) * len(cond), status="")

        def step(name: str) -> None:
            progress.update(task, status=name)
            progress.advance(task)

        for path in model_paths:
            try:
                transcriber = Transcriber.load(path, threshold=deltas, beat_tracker=tracker, input_kind=input_kind,
                                               separator=_load_separator(separation, separator_model, None))
            except ModelFileError as exc:
                fail(str(exc))
            _check_threshold_drums(threshold, deltas, transcriber.model)
            name = path.stem if path else "bundled"
            by_track: dict = {}
            results[name] = run_evaluation(transcriber, tracks, src, cond, step, beat_cache, by_track)
            texts.append(table_markdown(results[name], f"{name} on {annotations} ({len(tracks)} tracks)"))
            if per_track:
                texts.append(per_track_markdown(by_track, f"{name}, per track"))
    if len(results) > 1:
        texts += [table2_markdown(results, s, f"Table II, {s} audio: {annotations} ({len(tracks)} tracks)") for s in src]
    text = "\n\n".join(texts)
    print(text)
    if report is not None:
        report.write_text(text + "\n")


@app.command("train-lm")
def train_lm(
    kind: LMKind = typer.Option(..., "--kind", help="bigram (eq. 3) or gru."),
    gmd: Optional[Path] = typer.Option(None, "--gmd", help="GMD root: train on its train split, report validation and test."),
    midi_dir: Optional[Path] = typer.Option(None, "--midi-dir", help="A folder of drum MIDI files to train on."),
    valid_dir: Optional[Path] = typer.Option(None, "--valid-dir", help="Validation MIDI folder (default: 10 % of --midi-dir)."),
    test_dir: Optional[Path] = typer.Option(None, "--test-dir", help="Held-out MIDI folder to report perplexity on."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to save the language model (.pt)."),
    epochs: int = typer.Option(30, "--epochs", help="GRU epochs."),
    resume: bool = typer.Option(False, "--resume", help="GRU: continue from <out>.ckpt."),
    seed: int = typer.Option(0, "--seed"),
    instruments: str = typer.Option("BD,SD,HH", "--instruments",
                                    help="Drum classes (v2 models: BD,SD,SS,HH,OH,TT,CR,RD)."),
) -> None:
    """Train a drum-score language model on drum MIDI; prints per-tatum perplexity (chance = 2)."""
    from .lm_training import main as lm_main

    if kind == LMKind.none or (gmd is None) == (midi_dir is None):
        fail("give --kind bigram or gru, and exactly one of --gmd or --midi-dir", 2)
    _class_list("--instruments", instruments)
    argv = ["--kind", kind.value, "--epochs", str(epochs), "--seed", str(seed), "--instruments", instruments]
    argv += ["--gmd", str(gmd)] if gmd else ["--midi-dir", str(midi_dir)]
    for flag, value in (("--valid-dir", valid_dir), ("--test-dir", test_dir), ("--out", out)):
        if value is not None:
            argv += [flag, str(value)]
    if resume:
        argv.append("--resume")
    try:
        lm_main(argv)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))


@separator_app.command("download")
def separator_download(
    model: str = typer.Argument("umxl", help="umxl (default) or umxhq."),
    timeout: float = typer.Option(120.0, "--timeout", help="Give up after this many seconds."),
) -> None:
    """Fetch the Open-Unmix drum weights into the torch hub cache, for later offline use."""
    from .separation import SeparationUnavailable, download

    try:
        path = download(model, timeout=timeout)
    except SeparationUnavailable as exc:
        fail(str(exc))
    console.print(f"Open-Unmix {model} drum weights are at {path}")


@separator_app.command("score")
def separator_score(
    annotations: Path = typer.Argument(..., help="MDB-style track folders (a mix and its true drums stem)."),
    model: str = typer.Option("bundled", "--separator", help="bundled, umxl or umxhq."),
    weights: Optional[Path] = typer.Option(None, "--separator-weights", help="Local Open-Unmix weights."),
) -> None:
    """SDR and SI-SDR of the separated drums against each track's true drum stem, the mixture as baseline."""
    import numpy as np

    from .evaluation import find_tracks
    from .features import AudioError, load_audio
    from .separation import DrumSeparator, SeparationUnavailable
    from .separator_training import sdr, si_sdr

    try:
        tracks = [t for t in find_tracks(annotations) if {"drums", "mix"} <= set(t.audio)]
        separator = DrumSeparator.load(model, weights=weights)
    except (FileNotFoundError, SeparationUnavailable) as exc:
        fail(str(exc))
    if not tracks:
        fail(f"{annotations}: no track with both a mix and a drums stem")
    rows = []
    print("| track | SDR mixture | SDR separated | SI-SDR mixture | SI-SDR separated |\n|---|---|---|---|---|")
    for track in tracks:
        try:
            mix, drums = load_audio(track.audio["mix"]), load_audio(track.audio["drums"])
        except AudioError as exc:
            fail(str(exc))
        n = min(len(mix), len(drums))
        est = separator.separate(mix[:n], 44100)[0]
        rows.append((sdr(drums[:n], mix[:n]), sdr(drums[:n], est), si_sdr(drums[:n], mix[:n]), si_sdr(drums[:n], est)))
        print(f"| {track.name} | " + " | ".join(f"{v:.2f}" for v in rows[-1]) + " |")
    print("| mean | " + " | ".join(f"{v:.2f}" for v in np.mean(rows, axis=0)) + " |")


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
        console.print("interrupted", highlight=False)
    # Outside standalone mode click returns a command's exit code (typer.Exit) instead of exiting.
    if isinstance(code, int) and code:
        raise SystemExit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
