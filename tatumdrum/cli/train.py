"""`build-dataset`, `train` and `train-lm`: training data and training."""
from __future__ import annotations

from dataclasses import fields
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from .common import app, console, fail, require_extra, class_list, class_weights, level_range, check_device, progress_bar, train_with_progress

from ..train_config import TrainConfig  # torch-free

# `train`'s option defaults are TrainConfig's own, so that the two cannot drift apart.
DEFAULT = {f.name: f.default for f in fields(TrainConfig)}


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
    kit_dir: list[Path] = typer.Option([], "--kit-dir", help="A drum kit folder, or a folder of them: recorded "
                                       "multi-mic (MuldjordKit layout) or Hydrogen (drumkit.xml); repeatable."),
    piano_dir: list[Path] = typer.Option([], "--piano-dir", help="A folder of sampled piano notes; repeatable."),
    variation: list[str] = typer.Option([], "--variation", help="NAME=P: the probability of one playing variation "
                                        "per render (--v2), e.g. no_hats=0.3 for kick-and-snare grooves; repeatable."),
    drum_to_band: Optional[str] = typer.Option(None, "--drum-to-band", help="Drum-to-band level range in dB of the "
                                               "rendered mixes, as --drum-to-band=LOW,HIGH (default -9,3); e.g. "
                                               "-24,-10 for drums buried in the band."),
    band_percussion: float = typer.Option(0.0, "--band-percussion", min=0.0, max=1.0, help="Chance per render "
                                          "(--v2) of an unlabelled tambourine, cabasa or maracas part in the band."),
    separated: bool = typer.Option(False, "--separated", help="Also store the bundled separator's drum estimate "
                                   "of each mix, to train a model for --separation (needs tatumdrum[separation])."),
) -> None:
    """Render GMD drum MIDI (plus a generated accompaniment) to training pieces with tatum targets."""
    from ..data.build import BuildOptions, build_split
    from ..data.playing import VARIATION_PROBABILITY
    from ..instruments import ALL_INSTRUMENTS, THREE_CLASSES

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
    if separated:
        require_extra("separation", "--separated")
    levels = {"drum_to_band_db": level_range("--drum-to-band", drum_to_band)} if drum_to_band else {}
    options = BuildOptions(instruments=tuple(i.abbrev for i in (ALL_INSTRUMENTS if v2 else THREE_CLASSES)),
                           renders=renders, v2=v2, vary=v2, record_like=v2,
                           kit_dirs=tuple(str(d) for d in kit_dir), piano_dirs=tuple(str(d) for d in piano_dir),
                           variations=tuple(probabilities), band_percussion=band_percussion, separated=separated,
                           **levels)
    for split in [s.strip() for s in splits.split(",") if s.strip()]:
        with progress_bar() as progress:
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
    kind: ModelKind = typer.Option(ModelKind(DEFAULT["kind"]), "--kind", help="tatum: the proposed CRNN; frame: the baseline."),
    lm: LMKind = typer.Option(LMKind(DEFAULT["lm"]), "--lm", help="Language-model regulariser (eq. 5)."),
    lm_path: Optional[Path] = typer.Option(None, "--lm-path", help="A language model file; default: the bundled one."),
    gamma: Optional[float] = typer.Option(None, "--gamma", help="Eq. 4 weight (paper: 0.46 bigram, 0.61 GRU, 1.0 none)."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Eq. 5 weight (paper: 0.068 bigram, 0.055 GRU)."),
    tau: float = typer.Option(DEFAULT["tau"], "--tau", help="Gumbel-sigmoid temperature (eq. 8)."),
    gumbel_input: str = typer.Option(DEFAULT["gumbel_input"], "--gumbel-input", help="logit (a sample is 1 with probability phi) or prob (eq. 8 literally)."),
    epochs: int = typer.Option(DEFAULT["epochs"], "--epochs", min=1),
    steps_per_epoch: Optional[int] = typer.Option(None, "--steps-per-epoch", help="Default: one pass over the training tatums."),
    batch_size: int = typer.Option(DEFAULT["batch_size"], "--batch-size", min=1),
    crop_tatums: int = typer.Option(DEFAULT["crop_tatums"], "--crop-tatums", help="Tatums per training crop (64 = 4 bars of 4/4)."),
    crop_frames: int = typer.Option(DEFAULT["crop_frames"], "--crop-frames", help="Frames per crop for --kind frame (100 per second)."),
    lr: float = typer.Option(DEFAULT["lr"], "--lr"),
    seed: int = typer.Option(DEFAULT["seed"], "--seed"),
    channels: str = typer.Option(",".join(map(str, DEFAULT["channels"])), "--channels", help="Conv channels of the two encoder blocks."),
    gru_hidden: int = typer.Option(DEFAULT["gru_hidden"], "--gru-hidden", help="GRU units per layer and direction (paper: 98)."),
    max_valid: int = typer.Option(DEFAULT["max_valid"], "--max-valid", help="Validation pieces scored after each epoch."),
    threads: int = typer.Option(0, "--threads", help="Torch CPU threads (0: all cores)."),
    fresh: bool = typer.Option(False, "--fresh", help="Ignore an existing checkpoint instead of resuming it."),
    velocity_weight: float = typer.Option(DEFAULT["velocity_weight"], "--velocity-weight", help="Weight of the velocity loss "
                                          "(pieces built with --v2 carry velocities); 0: no velocity head."),
    gru_layers: int = typer.Option(DEFAULT["gru_layers"], "--gru-layers", min=1, help="GRU layers of the decoder (paper: 3)."),
    lr_decay: bool = typer.Option(DEFAULT["lr_decay"], "--lr-decay", help="Cosine learning-rate decay over the epochs."),
    negatives: float = typer.Option(DEFAULT["negatives"], "--negatives", min=0.0, max=1.0,
                                    help="Share of crops without drums (band alone, steady noise or tones) "
                                    "and with an empty score."),
    balance: float = typer.Option(DEFAULT["balance"], "--balance", min=0.0, max=1.0,
                                  help="Share of crops drawn class first (a class, then a crop holding one of its "
                                  "strokes), so rare classes are heard often."),
    classes: Optional[str] = typer.Option(None, "--classes", help="Train on these classes (e.g. "
                                          "BD,SD,HH,OH,TT,CR,RD); the data's others fold into them."),
    init: Optional[Path] = typer.Option(None, "--init", help="Start from this model's weights (same sizes, or fewer "
                                        "conv channels, widened to the same function); a class it lacks starts "
                                        "as the class it folds into."),
    class_gamma: Optional[str] = typer.Option(None, "--class-gamma", help="Eq. 4's positive weight for some "
                                              "classes (e.g. SS=8,TT=2); the others keep --gamma."),
    remix_db: Optional[str] = typer.Option(None, "--remix-db", help="Drum-to-band level range in dB of the "
                                           "training remixes of v2 data, as --remix-db=LOW,HIGH (default %g,%g)." % DEFAULT["remix_db"]),
    band_eq: float = typer.Option(DEFAULT["band_eq"], "--band-eq", min=0.0, max=1.0, help="Share of training remixes whose band "
                                  "gets an EQ of its own (brighter or darker than the drums)."),
    keep_last: bool = typer.Option(DEFAULT["keep_last"], "--keep-last", help="Write the last epoch to --out instead of the "
                                   "one the per-epoch validation check liked best."),
    device: str = typer.Option(DEFAULT["device"], "--device", help="cpu, or cuda where a GPU is available."),
    crop_workers: int = typer.Option(DEFAULT["crop_workers"], "--crop-workers", min=0, help="Processes that cut the "
                                     "training crops beside the network (0: between steps, as before v3)."),
    bf16: bool = typer.Option(DEFAULT["bf16"], "--bf16", help="The network's forward pass in bfloat16 (autocast; "
                              "weights stay float32): faster steps on CPUs with AVX-512 BF16 and on GPUs."),
) -> None:
    """Train a transcription model; resumes from <out>.ckpt if a run was interrupted."""
    require_extra("train", "train")
    import torch

    from ..training import train as run_training

    if threads:
        torch.set_num_threads(threads)
    check_device(device)
    cfg = TrainConfig(data=str(data), out=str(out), kind=kind.value, lm=lm.value,
                      lm_path=str(lm_path) if lm_path else None, gamma=gamma, alpha=alpha, tau=tau,
                      gumbel_input=gumbel_input, epochs=epochs, steps_per_epoch=steps_per_epoch,
                      batch_size=batch_size, crop_tatums=crop_tatums, crop_frames=crop_frames, lr=lr, seed=seed, max_valid=max_valid,
                      channels=tuple(int(c) for c in channels.split(",")), gru_hidden=gru_hidden,
                      velocity_weight=velocity_weight, gru_layers=gru_layers, lr_decay=lr_decay,
                      negatives=negatives, init=str(init) if init else None, balance=balance,
                      classes=class_list("--classes", classes) if classes else None,
                      class_gamma=class_weights("--class-gamma", class_gamma) if class_gamma else None, band_eq=band_eq,
                      keep_last=keep_last, device=device, crop_workers=crop_workers, bf16=bf16, **({"remix_db": level_range("--remix-db", remix_db)} if remix_db else {}))
    if init is not None:
        from ..model import TatumEnsemble
        from ..weights import ModelFileError, load_trainable

        try:
            start = load_trainable(init)
        except ModelFileError as exc:
            fail(f"--init: {exc}", 2)
        if isinstance(start.net, TatumEnsemble):
            fail(f"--init {init}: an ensemble of {len(start.net.members)} networks; start from one of them", 2)
        if start.stem_model is not None:
            fail(f"--init {init}: holds a mix model and a stem model; start from one of them", 2)
    state = train_with_progress(
        lambda report: run_training(cfg, report, resume=not fresh),
        lambda info: f"L_tran {info['loss']:.4f}  L_lang {info['lang']:.4f}",
        lambda info: f"validation F {info['valid_f']:.3f} (best {info['best_f']:.3f})")
    written = f"epoch {state['epoch']}" if keep_last else "the best epoch"
    console.print(f"best validation F {state['best_f']:.3f}; {written} written to {out}")



@app.command("pack")
def pack(
    gmd: Path = typer.Argument(..., help="The Groove MIDI Dataset folder (with info.csv)."),
    out: Path = typer.Argument(..., help="The pack folder to write (must not exist)."),
    kit_dir: list[Path] = typer.Option([], "--kit-dir", help="A drum kit folder, or a folder of them: recorded "
                                       "multi-mic (MuldjordKit layout) or Hydrogen (drumkit.xml); repeatable."),
    piano_dir: list[Path] = typer.Option([], "--piano-dir", help="A folder of sampled piano notes; repeatable."),
    splits: str = typer.Option("train,validation", "--splits", help="Comma-separated GMD splits whose MIDI travels."),
    max_takes: int = typer.Option(24, "--max-takes", min=1, help="Takes kept per kit piece, quietest to loudest."),
    compression: float = typer.Option(0.5, "--compression", min=0.0, max=1.0, help="Ogg Vorbis setting: 0 best "
                                      "quality, 1 smallest."),
    max_mib: float = typer.Option(50.0, "--max-mib", help="Refuse a pack larger than this (MiB): a device call "
                                  "carries 64 MiB with the working tree."),
) -> None:
    """Pack the sound sources of a v2 build (GMD MIDI, recorded kits, sampled pianos) small enough to
    travel to a GPU machine that renders its own training data (docs/training.md, "Training on a lent GPU")."""
    import shutil
    import tempfile

    from ..data.pack import PackOptions, make_pack

    if not (gmd / "info.csv").is_file():
        fail(f"{gmd}: not the Groove MIDI Dataset (no info.csv)")
    for folder in [*kit_dir, *piano_dir]:
        if not folder.is_dir():
            fail(f"{folder}: no such folder")
    if out.exists():
        fail(f"{out}: already exists; give a new folder")
    options = PackOptions(splits=tuple(s.strip() for s in splits.split(",") if s.strip()), max_takes=max_takes,
                          compression=compression)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written beside its destination and renamed when complete: no partial pack is left under `out`.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        with progress_bar() as progress:
            task = progress.add_task("packing", total=None, status="")

            def report(what: str, done: int, total: int) -> None:
                progress.update(task, description=what, completed=done, total=total)

            try:
                summary = make_pack(gmd, tmp, tuple(kit_dir), tuple(piano_dir), options, report)
            except (OSError, ValueError, RuntimeError) as exc:
                fail(f"pack: {exc}")
        mib = summary.bytes / 2**20
        if mib > max_mib:
            fail(f"{out}: the pack would be {mib:.1f} MiB, over --max-mib {max_mib:g}; "
                 "lower --max-takes or raise --compression")
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    console.print(f"{out}: {mib:.1f} MiB; {summary.gmd_files} GMD files, kit takes {summary.kit_takes}, "
                  f"piano samples {summary.piano_files}", highlight=False)


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
    require_extra("train", "train-lm")
    from ..lm_training import main as lm_main

    if kind == LMKind.none or (gmd is None) == (midi_dir is None):
        fail("give --kind bigram or gru, and exactly one of --gmd or --midi-dir", 2)
    class_list("--instruments", instruments)
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
