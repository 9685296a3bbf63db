"""`train-separator` and `separator download|score`: the Open-Unmix drum separator."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import app, separator_app, console, fail, check_device, require_extra, train_with_progress


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
    require_extra("separation", "train-separator")
    import torch

    from ..separator_training import SeparatorConfig, train_separator

    if threads:
        torch.set_num_threads(threads)
    check_device(device)
    cfg = SeparatorConfig(data=str(data), out=str(out), hidden_size=hidden_size, epochs=epochs,
                          steps_per_epoch=steps_per_epoch, batch_size=batch_size, seq_seconds=seq_seconds, lr=lr,
                          seed=seed, device=device, max_minutes=max_minutes)
    state = train_with_progress(
        lambda report: train_separator(cfg, report, resume=not fresh),
        lambda info: f"loss {info['loss']:.4f}",
        lambda info: f"validation SDR {info['valid_sdr']:.2f} dB (best {info['best_sdr']:.2f})")
    console.print(f"best validation SDR {state['best_sdr']:.2f} dB; separator written to {out}")



@separator_app.command("download")
def separator_download(
    model: str = typer.Argument("umxl", help="umxl (default) or umxhq."),
    timeout: float = typer.Option(120.0, "--timeout", help="Give up after this many seconds."),
) -> None:
    """Fetch the Open-Unmix drum weights into the torch hub cache, for later offline use."""
    require_extra("separation", "separator download")
    from ..separation import SeparationUnavailable, download

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
    require_extra("separation", "separator score")
    import numpy as np

    from ..evaluation import find_tracks
    from ..features import AudioError, load_audio
    from ..separation import DrumSeparator, SeparationUnavailable
    from ..separator_training import sdr, si_sdr

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
