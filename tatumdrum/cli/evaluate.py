"""`tatumdrum evaluate`: P/R/F of models or transcriptions on annotated recordings."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import app, fail, Separation, parse_sources, check_input_kind, progress_bar, load_separator, threshold_option, check_threshold_drums


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
    from ..beats import BeatTracker
    from ..evaluation import (beat_markdown, evaluate as run_evaluation, evaluate_transcriptions, find_tracks,
                              per_track_markdown, table2_markdown, table_markdown)
    from ..inference import Transcriber
    from ..weights import ModelFileError

    check_input_kind(input_kind)
    src = parse_sources("--sources", sources)
    thresholds = threshold_option(threshold)
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
    with progress_bar() as progress:
        task = progress.add_task("evaluating", total=len(model_paths) * len(tracks) * len(src) * len(cond), status="")

        def step(name: str) -> None:
            progress.update(task, status=name)
            progress.advance(task)

        for path in model_paths:
            try:
                transcriber = Transcriber.load(path, threshold=thresholds, beat_tracker=tracker, input_kind=input_kind,
                                               separator=load_separator(separation, separator_model, None))
            except ModelFileError as exc:
                fail(str(exc))
            check_threshold_drums(threshold, thresholds, transcriber.model)
            name = path.stem if path else "bundled"
            by_track: dict = {}
            beat_scores: dict = {}
            results[name] = run_evaluation(transcriber, tracks, src, cond, step, beat_cache, by_track, beat_scores)
            texts.append(table_markdown(results[name], f"{name} on {annotations} ({len(tracks)} tracks)"))
            if beat_scores:
                texts.append(beat_markdown(beat_scores, f"{name}: beats and bars (mir_eval F, +-70 ms, "
                                                        "estimated beats against the annotation)"))
            if per_track:
                texts.append(per_track_markdown(by_track, f"{name}, per track"))
    if len(results) > 1:
        texts += [table2_markdown(results, s, f"Table II, {s} audio: {annotations} ({len(tracks)} tracks)") for s in src]
    text = "\n\n".join(texts)
    print(text)
    if report is not None:
        report.write_text(text + "\n")
