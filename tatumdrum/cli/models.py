"""`tune-thresholds`, `ensemble` and `route`: model files made from trained networks."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..input_kind import STEM_PERCUSSIVENESS

from .common import app, console, fail, check_new_output, parse_sources


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
                                              "threshold for GROUP's drums on the tatums where DRUM is written (or "
                                              "none, if none helps); repeatable."),
) -> None:
    """Choose each drum's onset threshold on validation data: the best mean F over the given sets."""
    from ..decisions import DecisionPolicy
    from ..thresholds import TRIED_THRESHOLDS, recorded_items, rendered_items, tune, tune_given
    from ..weights import ModelFileError, load_model

    check_new_output(out, [model_path], "the tuned model")
    src = parse_sources("--sources", sources)
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
    from ..weights import ModelFileError, ensemble, load_model

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
    from ..weights import ModelFileError, load_model, with_stem_model

    check_new_output(out, [mix, stem], "the joined model")
    try:
        model = with_stem_model(load_model(mix), load_model(stem), (mix.name, stem.name), percussiveness)
    except ModelFileError as exc:
        fail(str(exc))
    model.save(out)
    console.print(f"{out}: {mix.name} for mixes, {stem.name} for drum stems (percussiveness >= {percussiveness})",
                  highlight=False)
