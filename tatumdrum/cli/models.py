"""`tune-thresholds`, `ensemble` and `route`: model files made from trained networks."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer

from ..input_kind import STEM_PERCUSSIVENESS

from .common import app, console, fail, check_new_output, parse_sources, require_extra


@app.command("tune-thresholds")
def tune_thresholds(
    model_path: Path = typer.Argument(..., help="The model file to tune."),
    out: Path = typer.Option(..., "--out", "-o", help="Where the model with per-drum thresholds is written."),
    valid: Optional[Path] = typer.Option(None, "--valid", help="Rendered validation pieces (build-dataset's validation/)."),
    recordings: Optional[Path] = typer.Option(None, "--recordings", help="Annotated recordings (MDB Drums layout), "
                                              "transcribed with their annotated beats."),
    max_pieces: int = typer.Option(124, "--max-pieces", min=1, help="Rendered pieces used (first renders)."),
    sources: str = typer.Option("drums,mix", "--sources", help="Which audio to tune on: drums, mix (a stem "
                                "model on drums, the mix model on mix), separated (the mix through the bundled "
                                "separator; rendered pieces built with --separated)."),
    given: Optional[list[str]] = typer.Option(None, "--given", help="GROUP:DRUM, e.g. HH:SS: also choose a higher "
                                              "threshold for GROUP's drums on the tatums where DRUM is written (or "
                                              "none, if none helps); repeatable."),
) -> None:
    """Choose each drum's onset threshold on validation data: the best mean F over the given sets."""
    require_extra("train", "tune-thresholds")
    from ..decisions import DecisionPolicy
    from ..thresholds import TRIED_THRESHOLDS, recorded_items, rendered_items, tune, tune_given
    from ..weights import ModelFileError, load_trainable as load_model

    check_new_output(out, [model_path], "the tuned model")
    src = parse_sources("--sources", sources, ("drums", "mix", "separated"))
    if "separated" in src:
        require_extra("separation", "--sources separated")
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
        if "separated" in src:
            with np.load(next(valid.glob("*.npz"))) as first:
                if "mel_separated" not in first.files:
                    fail(f"--valid {valid}: pieces without the separator's audio; build them with --separated")
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
    for group, (threshold, f) in chosen.items():
        per_set = ", ".join(f"{name} {100 * s[threshold][group].f_measure:.1f}" for name, s in sweeps.items()
                            if group in s[threshold])
        console.print(f"{group}: threshold {threshold:.2f} (mean F {100 * f:.1f}: {per_set})", highlight=False)
    rules = []
    for group, drum in pairs:
        with console.status(f"scoring {group} on the tatums with {drum}"):
            found, f, f_without = tune_given(items, model.instruments, thresholds, group, drum)
        said = f"threshold {found[0][2]:.2f}" if found else "no rule"
        console.print(f"{group} where {drum} is written: {said} (mean {group} F {100 * f:.1f}, without "
                      f"{100 * f_without:.1f})", highlight=False)
        rules += found
    model.policy = DecisionPolicy(model.instruments, thresholds, tuple(rules))
    model.info = {**model.info, "thresholds_from": sorted(sets), "thresholds_sources": list(src),
                  "thresholds_tried": list(TRIED_THRESHOLDS)}
    model.save(out)
    extra = "".join(f", {d} where {g} is written {t}" for d, g, t in model.policy.given)
    console.print(f"thresholds {dict(zip((i.abbrev for i in model.instruments), thresholds))}{extra} written to {out}",
                  highlight=False)



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
    require_extra("train", "ensemble")
    from ..weights import ModelFileError, ensemble, load_trainable as load_model

    if len(models) < 2:
        fail("give two or more model files to average")
    check_new_output(out, models, "the ensemble")
    try:
        model = ensemble([load_model(m) for m in models], [m.name for m in models])
    except ModelFileError as exc:
        fail(str(exc))
    model.save(out)
    thresholds = dict(zip((i.abbrev for i in model.instruments), model.policy.thresholds))
    console.print(f"{len(model.net.members)} networks written to {out}; thresholds (the members' mean) {thresholds}. "
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
    require_extra("train", "route")
    from ..weights import ModelFileError, load_trainable as load_model, with_stem_model

    check_new_output(out, [mix, stem], "the joined model")
    try:
        model = with_stem_model(load_model(mix), load_model(stem), (mix.name, stem.name), percussiveness)
    except ModelFileError as exc:
        fail(str(exc))
    model.save(out)
    console.print(f"{out}: {mix.name} for mixes, {stem.name} for drum stems (percussiveness >= {percussiveness})",
                  highlight=False)


@app.command("export")
def export_cmd(
    model_path: Path = typer.Argument(..., help="A model file (.pt) from train, tune-thresholds, ensemble or route."),
    out: Path = typer.Option(..., "--out", "-o", help="Where the export is written (a zip, e.g. my.onnx.zip)."),
) -> None:
    """Export a model to ONNX: `transcribe --model` and `evaluate --model` run it without PyTorch, faster."""
    require_extra("export", "export")

    from ..export import export_model
    from ..features import log_mel
    from ..inference import tatum_outputs
    from ..tatums import interpolate_tatums
    from ..weights import ModelFileError, load_model, load_trainable

    check_new_output(out, [model_path], "the export")
    try:
        model = load_trainable(model_path)
        with console.status(f"exporting {model_path}"):
            export_model(model, out)
        exported = load_model(out)
    except ModelFileError as exc:
        fail(str(exc))
    # The export must hear what the model hears, on every route: phi for 12 s of decaying noise bursts.
    rng = np.random.default_rng(0)
    t = np.arange(12 * 44100) / 44100
    audio = rng.standard_normal(len(t)) * np.exp(-30 * (t % 0.3)) * rng.uniform(0.1, 1, len(t) // 13230 + 1)[(t // 0.3).astype(int)]
    mel = log_mel(0.1 * audio.astype(np.float32))
    tatums = interpolate_tatums(np.arange(0.0, len(mel) / 100.0, 0.6))
    pairs = [(model, exported)] + ([(model.stem_model, exported.stem_model)] if model.stem_model else [])
    error = max(float(np.abs(tatum_outputs(a, mel, tatums)[0] - tatum_outputs(b, mel, tatums)[0]).max())
                for a, b in pairs)
    if error > 1e-4:
        out.unlink(missing_ok=True)
        fail(f"{model_path}: the export's onset probabilities differ from the model's by {error:.2g}; nothing written")
    console.print(f"{out}: exported {model_path} (onset probabilities within {error:.1g} of the model's)",
                  highlight=False)
