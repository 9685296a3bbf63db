"""The `tatumdrum` command line: a thin layer over inference, training and evaluation."""
from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Tatum-level drum transcription: audio in, drum score out (MIDI, MusicXML, JSON).")
separator_app = typer.Typer(no_args_is_help=True, help="Manage the Open-Unmix drum separator's weights.")
app.add_typer(separator_app, name="separator")
console = Console(stderr=True)

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".m4a", ".opus"}


class Separation(str, Enum):
    auto = "auto"
    required = "required"
    none = "none"


def fail(message: str, code: int = 1) -> None:
    """One clear line on stderr and a non-zero exit: users never see a traceback."""
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, transient=False)


def _collect_inputs(inputs: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        else:
            files.append(path)
    return files


def _output_paths(files: list[Path], inputs: list[Path], output: Optional[Path], formats: list[str]) -> list[list[Path]]:
    """Where each input's score goes: `-o file.ext` for one file, else `<dir>/<stem>.<format>`."""
    single = len(files) == 1 and len(inputs) == 1 and not inputs[0].is_dir()
    if single and output is not None and output.suffix:
        return [[output]]
    folder = output if output is not None else None
    paths = []
    for f in files:
        base = (folder / f.stem) if folder is not None else f.with_suffix("")
        paths.append([base.with_name(base.name + "." + fmt.lstrip(".")) for fmt in formats])
    return paths


def _load_separator(mode: Separation, model: str, weights: Optional[Path]):
    if mode == Separation.none:
        return None
    from .separation import DrumSeparator, SeparationUnavailable

    try:
        return DrumSeparator.load(model, weights=weights)
    except SeparationUnavailable as exc:
        if mode == Separation.required:
            fail(str(exc))
        console.print(f"[yellow]warning:[/] {exc} Transcribing the mixture without separation.", highlight=False)
        return None


@app.command()
def transcribe(
    inputs: list[Path] = typer.Argument(..., help="Audio files or folders (wav, flac, ogg, mp3)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="Output file (its suffix picks the format) or, for several inputs, a folder."),
    formats: str = typer.Option("mid", "--format", "-f", help="Formats for folder output: mid, musicxml, json (comma-separated)."),
    model: Optional[Path] = typer.Option(None, "--model", "-m", help="A model file; default: the bundled model."),
    tatums_per_beat: int = typer.Option(4, "--tatums-per-beat", min=1, max=12, help="Tatums per beat (4 = 16th notes)."),
    threshold: Optional[float] = typer.Option(None, "--threshold", min=0.0, max=1.0, help="Onset threshold delta (default: the model's, 0.2)."),
    separation: Separation = typer.Option(Separation.auto, "--separation",
                                          help="auto: separate drums if the weights can be had; required: fail otherwise; none: skip."),
    separator_model: str = typer.Option("umxl", "--separator", help="Open-Unmix model: umxl or umxhq."),
    separator_weights: Optional[Path] = typer.Option(None, "--separator-weights", help="Local Open-Unmix weights (file or folder)."),
    save_stems: Optional[Path] = typer.Option(None, "--save-stems", help="Folder to write the drum stem the model heard."),
    beats_file: Optional[Path] = typer.Option(None, "--beats", help="Given beats (time and bar position per line) instead of tracking."),
) -> None:
    """Transcribe the drums of songs into scores on their own beat grid."""
    from .writers import UnsupportedFormatError, check_output_path, write_score

    files = _collect_inputs(inputs)
    if not files:
        fail("no audio files found in the given inputs")
    fmt_list = [f.strip() for f in formats.split(",") if f.strip()]
    targets = _output_paths(files, inputs, output, fmt_list)
    try:
        for paths in targets:
            for p in paths:
                check_output_path(p)
    except UnsupportedFormatError as exc:
        fail(str(exc), 2)
    if beats_file is not None and len(files) > 1:
        fail("--beats gives one song's beats: use it with a single input file", 2)

    from .beats import BeatTrackingError, read_beats_tsv
    from .features import AudioError
    from .inference import Transcriber
    from .weights import ModelFileError

    try:
        beats = read_beats_tsv(beats_file) if beats_file else None
    except (OSError, ValueError) as exc:
        fail(f"{beats_file}: cannot read beats ({exc})")
    try:
        transcriber = Transcriber.load(model, tatums_per_beat=tatums_per_beat, threshold=threshold,
                                       separator=_load_separator(separation, separator_model, separator_weights))
    except ModelFileError as exc:
        fail(str(exc))

    failures = 0
    with _progress() as progress:
        task = progress.add_task("transcribing", total=len(files), status="")
        for f, paths in zip(files, targets):
            def stage(name: str, f: Path = f) -> None:
                progress.update(task, status=f"{f.name}: {name}")
            try:
                stage("decoding")
                from .features import load_audio

                score, heard = transcriber.transcribe_audio(load_audio(f), beats, stage)
                stage("writing")
                for p in paths:
                    write_score(score, p)
                if save_stems is not None and transcriber.separator is not None:
                    import soundfile as sf

                    save_stems.mkdir(parents=True, exist_ok=True)
                    sf.write(save_stems / f"{f.stem}_drums.wav", heard, 44100)
                n = int(score.onsets.sum())
                progress.console.print(f"[green]✓[/] {f} → {', '.join(map(str, paths))} ({n} onsets, "
                                       f"{len(score.beats.times)} beats)", highlight=False)
            except (AudioError, BeatTrackingError, OSError, ValueError) as exc:
                failures += 1
                progress.console.print(f"[bold red]error:[/] {exc}", highlight=False)
            progress.advance(task)
    if failures:
        fail(f"{failures} of {len(files)} file(s) failed")


def main() -> None:  # pragma: no cover - entry point convenience
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
