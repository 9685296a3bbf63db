"""`tatumdrum train`: fit the tatum CRNN on L_tran (+ alpha L_lang), or the frame-level baseline on eq. 10.

Checkpoints every epoch (model, optimiser, RNG, best score) so that an interrupted run resumes where
it stopped; the best epoch on validation data becomes the exported model.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .crop_pool import CropPool, make_batch_fn
from .dataset import SEPARATED, SOURCES, V2_SOURCES, Batch, Piece, load_pieces, make_batch, pieces_by_class, with_classes
from .decisions import DecisionPolicy
from .features import MEL
from .instruments import DrumInstrument, fold_row, instruments_from_abbrevs
from .losses import frame_loss, language_loss, total_loss, transcription_loss, velocity_loss
from .metrics import OnsetCounts, score_onsets
from .model import CRNNConfig, FrameCRNN, TatumCRNN
from .train_config import TrainConfig  # noqa: F401  (callers import it from here too)
from .weights import TrainedModel
from .widen import widen_crnn

ProgressFn = Callable[[str, int, int, dict], None]


def _frame_targets(piece: Piece, n_frames: int, fps: float = MEL.fps) -> np.ndarray:
    targets = np.zeros((len(piece.instruments), n_frames), dtype=np.float32)
    for k, inst in enumerate(piece.instruments):
        idx = np.round(piece.onset_times.get(inst.abbrev, np.zeros(0)) * fps).astype(int)
        targets[k, idx[(idx >= 0) & (idx < n_frames)]] = 1.0
    return targets


def _frame_batch(pieces: list[Piece], cfg: TrainConfig, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    mels, targets = [], []
    while len(mels) < cfg.batch_size:
        piece = pieces[int(rng.integers(len(pieces)))]
        mel = piece.mels[str(rng.choice([s for s in cfg.sources if s in piece.mels]))]
        if len(mel) < cfg.crop_frames:
            continue
        f0 = int(rng.integers(len(mel) - cfg.crop_frames + 1))
        mels.append(mel[f0:f0 + cfg.crop_frames].astype(np.float32))
        targets.append(_frame_targets(piece, len(mel))[:, f0:f0 + cfg.crop_frames])
    return torch.from_numpy(np.stack(mels)), torch.from_numpy(np.stack(targets))


def validate(net: torch.nn.Module, kind: str, pieces: list[Piece], threshold: float,
             sources: tuple[str, ...] = SOURCES) -> dict[str, dict[str, float]]:
    """F/P/R at 50 ms on whole validation pieces with their given tatums, per source."""
    from .inference import tatum_probabilities

    net.eval()
    # The same path as transcription: the baseline's peaks are picked and quantised there too.
    model = TrainedModel(net, kind, pieces[0].instruments, DecisionPolicy.uniform(pieces[0].instruments, threshold))
    report = {}
    for source in sources:
        total: dict[str, OnsetCounts] = {}
        for piece in pieces:
            phi = tatum_probabilities(model, piece.mels[source], piece.tatum_times)
            estimated = {inst.abbrev: piece.tatum_times[phi[k] >= threshold] for k, inst in enumerate(model.instruments)}
            counts = score_onsets(piece.onset_times, estimated)
            for name, c in counts.items():
                total[name] = total.get(name, OnsetCounts()) + c
        report[source] = {name: {"f": c.f_measure, "p": c.precision, "r": c.recall} for name, c in total.items()}
    net.train()
    return report


def learning_rate(cfg: TrainConfig, epoch: int) -> float:
    """The epoch's learning rate: constant, or cosine from lr down to lr_floor * lr at the last epoch."""
    if not cfg.lr_decay or cfg.epochs <= 1:
        return cfg.lr
    progress = epoch / (cfg.epochs - 1)
    return cfg.lr * (cfg.lr_floor + (1 - cfg.lr_floor) * 0.5 * (1 + np.cos(np.pi * progress)))


def _mean_f(report: dict) -> float:
    return float(np.mean([r["all"]["f"] for r in report.values()]))


def _load_lm(cfg: TrainConfig, instruments: tuple[DrumInstrument, ...]):
    if cfg.lm == "none":
        return None
    from .lm import load_language_model
    from .weights import bundled_model_path

    path = Path(cfg.lm_path) if cfg.lm_path else bundled_model_path(f"lm/{cfg.lm}.pt")
    lm = load_language_model(path)
    if lm.instrument_abbrevs != tuple(i.abbrev for i in instruments):
        raise ValueError(f"{path}: the language model's drums {lm.instrument_abbrevs} are not the data's "
                         f"{tuple(i.abbrev for i in instruments)}; give --lm-path (train-lm --instruments ...)")
    lm.eval()
    for p in lm.parameters():
        p.requires_grad_(False)
    return lm


def init_from(net: torch.nn.Module, source: TrainedModel, instruments: tuple[DrumInstrument, ...],
              seed: int = 0) -> list[str]:
    """Copy `source`'s weights into `net`, whose classes may differ: each output row is matched by class,
    and a class the source lacks starts from the class it folds into (a side stick from the snare), so a
    new class begins as a copy of the sound it used to be heard as. A source with fewer conv channels is
    widened first (`widen.widen_crnn`), so it starts as the same function. Returns the classes that
    started from another class."""
    state = net.state_dict()
    src = source.net
    if isinstance(src, TatumCRNN) and isinstance(net, TatumCRNN) and src.cfg.channels != net.cfg.channels \
            and all(a <= b for a, b in zip(src.cfg.channels, net.cfg.channels)):
        src = widen_crnn(src, net.cfg.channels, seed)
    incoming = src.state_dict()
    copied = []
    for name, tensor in state.items():
        if name not in incoming:
            raise ValueError(f"{name}: the model to start from has no such weights")
        if name.startswith(("fc.", "velocity_fc.")):
            for k, inst in enumerate(instruments):
                row = fold_row(inst, source.instruments)
                if row is not None:
                    tensor[k] = incoming[name][row]
                    if source.instruments[row] != inst and inst.abbrev not in copied:
                        copied.append(inst.abbrev)
        elif incoming[name].shape != tensor.shape:
            raise ValueError(f"{name}: shape {tuple(incoming[name].shape)} in the model to start from, "
                             f"{tuple(tensor.shape)} here (give the same --channels, --gru-hidden, --gru-layers)")
        else:
            tensor.copy_(incoming[name])
    net.load_state_dict(state)
    return copied


def positive_weights(gamma: float, class_gamma: dict[str, float] | None,
                     instruments: tuple[DrumInstrument, ...]) -> float | torch.Tensor:
    """Eq. 4's gamma, or one gamma per class (a (K, 1) tensor that broadcasts over tatums)."""
    if not class_gamma:
        return gamma
    known = {inst.abbrev for inst in instruments}
    unknown = sorted(set(class_gamma) - known)
    if unknown:
        raise ValueError(f"class gamma for {', '.join(unknown)}: not among this model's classes "
                         f"({', '.join(sorted(known))})")
    return torch.tensor([[class_gamma.get(inst.abbrev, gamma)] for inst in instruments], dtype=torch.float32)


def _tatum_losses(net: TatumCRNN, batch: Batch, cfg: TrainConfig, lm, gamma: float | torch.Tensor,
                  gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Eq. 4's L_tran, eq. 5's L_lang (with an LM) and the velocity loss (with a velocity head) of a batch."""
    with torch.autocast(batch.mel.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
        logits, vel_logits = net.forward_with_velocity(batch.mel, batch.spans)
    logits = logits.float()  # losses in float32, whatever precision the network ran in
    l_tran = transcription_loss(logits, batch.targets, gamma)
    l_lang = language_loss(lm.nll, logits, batch.bar_lengths, cfg.tau, cfg.gumbel_input, gen) if lm is not None else None
    l_vel = None
    if vel_logits is not None and batch.velocities is not None:
        l_vel = velocity_loss(vel_logits.float(), batch.velocities, batch.targets)
    return l_tran, l_lang, l_vel


def train(cfg: TrainConfig, progress: ProgressFn | None = None, resume: bool = True) -> dict:
    """Train, checkpointing to `<out>.ckpt` every epoch; export the best epoch to `cfg.out`."""
    cfg = cfg.resolved()
    torch.manual_seed(cfg.seed)
    data = Path(cfg.data)
    train_pieces = load_pieces(data / "train")
    valid_pieces = load_pieces(data / "validation")[: cfg.max_valid] if (data / "validation").is_dir() else []
    instruments = train_pieces[0].instruments
    if any(p.instruments != instruments for p in train_pieces + valid_pieces):
        raise ValueError(f"{data}: pieces with different drum classes; build train and validation alike")
    if cfg.classes:
        instruments = instruments_from_abbrevs(list(cfg.classes))
        train_pieces = [with_classes(p, instruments) for p in train_pieces]
        valid_pieces = [with_classes(p, instruments) for p in valid_pieces]
    if cfg.sources is None:
        cfg.sources = V2_SOURCES if all("band" in p.mels for p in train_pieces) else SOURCES
        if all(SEPARATED in p.mels for p in train_pieces + valid_pieces):
            cfg.sources += (SEPARATED,)
    # A crop needs a piece at least as long as the crop: shorter ones (one-bar fills) cannot give one.
    unit, steps, length = ((cfg.crop_tatums, "tatums", lambda p: len(p.tatum_times)) if cfg.kind == "tatum"
                           else (cfg.crop_frames, "frames", lambda p: len(p.mels["drums"])))
    train_pieces = [p for p in train_pieces if length(p) >= unit]
    if not train_pieces:
        raise ValueError(f"{data / 'train'}: no piece is {unit} {steps} long; give a smaller --crop-{steps}")
    with_velocity = cfg.velocity_weight > 0 and all(p.velocities is not None for p in train_pieces)
    net_cfg = CRNNConfig(n_instruments=len(instruments), channels=tuple(cfg.channels), gru_hidden=cfg.gru_hidden,
                         gru_layers=cfg.gru_layers, velocity=with_velocity and cfg.kind == "tatum")
    device = torch.device(cfg.device)
    # On the device before the optimiser and any checkpoint exist, so that their state lands there too.
    net = (TatumCRNN(net_cfg) if cfg.kind == "tatum" else FrameCRNN(net_cfg)).to(device)
    lm = _load_lm(cfg, instruments) if cfg.kind == "tatum" else None
    if lm is not None:
        lm.to(device)
    valid_sources = tuple(s for s in cfg.sources if s != "remix")
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-9, weight_decay=cfg.weight_decay)
    out = Path(cfg.out)
    ckpt_path = out.with_suffix(".ckpt")
    rng = np.random.default_rng(cfg.seed)
    state = {"epoch": 0, "best_f": -1.0, "history": [], "seconds": 0.0}
    if resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        net.load_state_dict(ckpt["net"])
        opt.load_state_dict(ckpt["opt"])
        rng.bit_generator.state = ckpt["rng"]
        torch.set_rng_state(ckpt["torch_rng"])
        state = ckpt["state"]
        if not out.is_file():
            # The checkpoint's best epoch was exported elsewhere (a run continued from a copied
            # checkpoint): this run's own epochs compete afresh, so that one of them is written.
            state["best_f"] = -1.0
    elif cfg.init:
        from .weights import load_model

        init_from(net, load_model(Path(cfg.init)), instruments, cfg.seed)
    if cfg.steps_per_epoch is None:
        cfg.steps_per_epoch = max(1, int(sum(length(p) for p in train_pieces) / (cfg.batch_size * unit)))
    gen = torch.Generator(device).manual_seed(cfg.seed + state["epoch"])
    gamma = positive_weights(cfg.gamma, cfg.class_gamma, instruments)
    if isinstance(gamma, torch.Tensor):
        gamma = gamma.to(device)
    by_class = pieces_by_class(train_pieces) if cfg.balance else None
    # Made after the net is on its device: the workers fork, but only cut crops with numpy.
    pool = (CropPool(train_pieces, make_batch_fn(cfg.batch_size, cfg.crop_tatums, sources=cfg.sources,
                                                negatives=cfg.negatives, balance=cfg.balance, by_class=by_class,
                                                remix_db=tuple(cfg.remix_db), band_eq=cfg.band_eq),
                      cfg.crop_workers, cfg.seed) if cfg.crop_workers and cfg.kind == "tatum" else None)
    try:
        net.train()
        for epoch in range(state["epoch"], cfg.epochs):
            t0 = time.time()
            for group in opt.param_groups:
                group["lr"] = learning_rate(cfg, epoch)
            sums = {"tran": 0.0, "lang": 0.0, "vel": 0.0}
            batches = pool.epoch(epoch, cfg.steps_per_epoch) if pool is not None else None
            for step in range(cfg.steps_per_epoch):
                if cfg.kind == "tatum":
                    batch = (next(batches) if batches is not None else
                             make_batch(train_pieces, cfg.batch_size, cfg.crop_tatums, rng, cfg.sources, cfg.negatives,
                                        cfg.balance, by_class, tuple(cfg.remix_db), cfg.band_eq)).to(device)
                    l_tran, l_lang, l_vel = _tatum_losses(net, batch, cfg, lm, gamma, gen)
                else:
                    mel, targets = (t.to(device) for t in _frame_batch(train_pieces, cfg, rng))
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                        frame_logits = net(mel)
                    l_tran, l_lang, l_vel = frame_loss(frame_logits.float(), targets, cfg.beta), None, None
                loss = total_loss(l_tran, l_lang, cfg.alpha)
                if l_vel is not None:
                    loss = loss + cfg.velocity_weight * l_vel
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                opt.step()
                sums["tran"] += l_tran.item()
                sums["lang"] += l_lang.item() if l_lang is not None else 0.0
                sums["vel"] += l_vel.item() if l_vel is not None else 0.0
                if progress:
                    progress("step", step + 1, cfg.steps_per_epoch,
                             {"epoch": epoch + 1, "loss": sums["tran"] / (step + 1), "lang": sums["lang"] / (step + 1)})
            report = validate(net, cfg.kind, valid_pieces, cfg.threshold, valid_sources) if valid_pieces else {}
            f = _mean_f(report) if report else -epoch
            state["seconds"] += time.time() - t0
            state["history"].append({"epoch": epoch + 1, "l_tran": sums["tran"] / cfg.steps_per_epoch,
                                     "l_lang": sums["lang"] / cfg.steps_per_epoch,
                                     "l_vel": sums["vel"] / cfg.steps_per_epoch, "valid": report,
                                     "seconds": time.time() - t0})
            improved = f > state["best_f"]
            if improved:
                state["best_f"] = f
            if improved or cfg.keep_last:
                TrainedModel(net, cfg.kind, instruments, DecisionPolicy.uniform(instruments, cfg.threshold),
                             {"train_config": asdict(cfg), "epoch": epoch + 1, "valid": report}).save(out)
            state["epoch"] = epoch + 1
            tmp = ckpt_path.with_suffix(".ckpt.tmp")
            torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "rng": rng.bit_generator.state,
                        "torch_rng": torch.get_rng_state(), "state": state, "config": asdict(cfg)}, tmp)
            tmp.replace(ckpt_path)
            if progress:
                progress("epoch", epoch + 1, cfg.epochs, {"valid_f": f, "best_f": state["best_f"]})
    finally:
        if pool is not None:
            pool.close()
    out.with_suffix(".history.json").write_text(json.dumps(state, indent=1))
    return state
