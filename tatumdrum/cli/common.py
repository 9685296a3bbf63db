"""What every command shares: the typer app, one-line errors, progress bars and option parsers."""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .. import interrupt

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Tatum-level drum transcription: audio in, drum score out (MIDI, MusicXML, JSON).")


def _version(value: bool) -> None:
    if value:
        from .. import __version__

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
    from rich.markup import escape

    # Escaped: a path or an extra's name in square brackets is text, not rich markup.
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


# What each optional feature imports, by the extra that installs it (pyproject.toml).
EXTRAS = {"train": ("torch",), "export": ("torch", "onnx"), "separation": ("torch", "torchaudio", "openunmix")}


def require_extra(extra: str, what: str) -> None:
    """A one-line error naming the extra to install where `what` needs packages this install lacks."""
    import importlib.util

    def absent(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is None
        except ImportError:
            return True

    missing = [m for m in EXTRAS[extra] if absent(m)]
    if missing:
        name = "train" if extra == "export" else extra
        fail(f"{what} needs {' and '.join(missing)}: pip install 'tatumdrum[{name}]'")


def class_list(option: str, text: str) -> tuple[str, ...]:
    """Drum classes from a comma-separated option, or one error line naming the option and the known classes."""
    from ..instruments import ALL_INSTRUMENTS, instruments_from_abbrevs

    abbrevs = tuple(a.strip() for a in text.split(",") if a.strip())
    try:
        instruments_from_abbrevs(abbrevs)
    except KeyError:
        fail(f"{option}: unknown class in {text!r} (known: {', '.join(i.abbrev for i in ALL_INSTRUMENTS)})", 2)
    return abbrevs


def class_weights(option: str, text: str) -> dict[str, float]:
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
        weights[class_list(option, name)[0]] = weight
    return weights


def level_range(option: str, text: str) -> tuple[float, float]:
    """LOW,HIGH in dB, or one error line naming the option."""
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        fail(f"{option}: {text!r} is not LOW,HIGH in dB (e.g. -22,6)", 2)
    if not low <= high:
        fail(f"{option}: {text!r}: LOW must not exceed HIGH", 2)
    return low, high


def check_device(device: str) -> None:
    """--device: cpu, or a CUDA device that is there."""
    require_extra("train", "training")
    import torch

    try:
        kind = torch.device(device).type
    except RuntimeError:
        fail(f"--device {device}: not a device; give cpu or cuda")
    if kind not in ("cpu", "cuda"):
        fail(f"--device {device}: give cpu or cuda")
    if kind == "cuda" and not torch.cuda.is_available():
        fail(f"--device {device}: no CUDA device is available here")


def check_new_output(out: Path, inputs: list[Path], what: str) -> None:
    """A model command never overwrites the model file it reads."""
    if any(out.resolve() == p.resolve() for p in inputs):
        fail(f"--out {out}: write {what} to a new file")


def parse_sources(option: str, text: str, allowed: tuple[str, ...] = ("drums", "mix")) -> tuple[str, ...]:
    src = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in src if s not in allowed]
    if bad or not src:
        fail(f"{option} {text}: choose from {', '.join(allowed)}", 2)
    return src


def check_input_kind(kind: str) -> None:
    from ..input_kind import INPUT_KINDS

    if kind not in INPUT_KINDS:
        fail(f"--input {kind}: choose {', '.join(INPUT_KINDS)}", 2)


def progress_bar(quiet: bool = False) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, transient=True, disable=quiet)


def choose_separator(mode: Separation, model: Optional[str], local: bool = False) -> Optional[str]:
    """Which separator a run uses: none, or "bundled", "umxl" or "umxhq".

    auto never downloads and never warns: official weights already in torch.hub's cache, else the
    bundled separator. required takes --separator (default bundled) and may download official weights.
    `local`: --separator-weights are given, so nothing needs to be cached.
    """
    if mode == Separation.none:
        return None
    from ..separation import BUNDLED, SEPARATORS, cached

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


def load_separator(mode: Separation, model: Optional[str], weights: Optional[Path]):
    if mode == Separation.none:
        return None
    require_extra("separation", f"--separation {mode.value}")
    from ..separation import DrumSeparator, SeparationUnavailable

    model = choose_separator(mode, model, local=weights is not None)
    try:
        return DrumSeparator.load(model, weights=weights)
    except SeparationUnavailable as exc:
        if mode == Separation.required:
            fail(str(exc))
        console.print(f"[yellow]warning:[/] {exc} — transcribing the mixture without separation.", highlight=False)
        return None


def train_with_progress(run: Callable[[Callable], dict], step_status: Callable[[dict], str],
                         epoch_summary: Callable[[dict], str]) -> dict:
    """Run a trainer that reports ("step" | "epoch", done, total, info): a progress bar over each epoch's
    steps and one printed line per epoch. Data errors end with one line."""
    with progress_bar() as progress:
        task = progress.add_task("training", total=None, status="")

        def report(event: str, done: int, total: int, info: dict) -> None:
            interrupt.check()  # a Ctrl-C recorded while torch loaded stops the run at its next step
            if event == "step":
                progress.update(task, description=f"epoch {info['epoch']}", completed=done, total=total,
                                status=step_status(info))
            else:
                progress.console.print(f"epoch {done}/{total}: {epoch_summary(info)}", highlight=False)

        try:
            return run(report)
        except (FileNotFoundError, ValueError) as exc:
            fail(str(exc))


def threshold_option(text: str | None) -> float | dict[str, float] | None:
    from ..decisions import parse_threshold_option

    if text is None:
        return None
    try:
        return parse_threshold_option(text)
    except ValueError as exc:
        fail(f"--threshold {text}: {exc}", 2)


def check_threshold_drums(text: str | None, thresholds: object, model: object) -> None:
    """Per-drum --threshold names, checked against the loaded model's drums before any work."""
    if isinstance(thresholds, dict):
        try:
            model.policy.overridden(thresholds)
        except ValueError as exc:
            fail(f"--threshold {text}: {exc}", 2)


