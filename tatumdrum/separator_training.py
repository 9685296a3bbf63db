"""Training an Open-Unmix drum separator on the project's own renders (`tatumdrum train-separator`).

The model is the `openunmix` package's `OpenUnmix` (its one readable model file), trained the way
Open-Unmix's own recipe does: magnitude spectrograms of a mixture in, of the drums out, mean squared
error, Adam. The mixtures are made afresh for every example from the rendered stems (`build-dataset
--v2 --keep-audio` writes `<piece>_clean_drums.flac` and `<piece>_band.flac`): random crops, drums
and band from the same piece or two different ones, random levels, sometimes one stem alone.

The result is written in Open-Unmix's own folder layout (`separator.json`, `drums.json`, `drums.pth`),
which `openunmix.utils.load_separator` and `separation.DrumSeparator` read. It is mono (one channel):
the transcriber hears mono audio, and a stereo model would double the input layer's cost.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

SAMPLE_RATE = 44100
N_FFT = 4096
N_HOP = 1024
TARGET = "drums"
DRUM_FILE, BAND_FILE = "_clean_drums", "_band"
AUDIO_SUFFIXES = (".flac", ".ogg", ".wav")


@dataclass
class SeparatorConfig:
    data: str
    out: str
    hidden_size: int = 128
    bandwidth: float = 16000.0
    seq_seconds: float = 6.0
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-5
    epochs: int = 10
    steps_per_epoch: int = 200
    seed: int = 0
    device: str = "cpu"
    # Augmentation: stems from two different pieces this often; one stem alone this often each.
    cross_piece: float = 0.5
    drums_only: float = 0.1
    band_only: float = 0.05
    gain_db: tuple[float, float] = (-9.0, 3.0)
    # Stop after the epoch that passes this much training time (None: run all epochs).
    max_minutes: float | None = None


def stem_pairs(folder: Path) -> list[tuple[Path, Path]]:
    """(drums, band) stem files of every rendered piece in `folder`."""
    pairs = []
    for drums in sorted(p for p in Path(folder).iterdir() if p.stem.endswith(DRUM_FILE) and p.suffix in AUDIO_SUFFIXES):
        stem = drums.stem[: -len(DRUM_FILE)]
        band = next((drums.with_name(stem + BAND_FILE + s) for s in AUDIO_SUFFIXES
                     if drums.with_name(stem + BAND_FILE + s).is_file()), None)
        if band is not None:
            pairs.append((drums, band))
    return pairs


def load_stems(folder: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    import soundfile as sf

    pairs = stem_pairs(folder)
    if not pairs:
        raise FileNotFoundError(f"{folder}: no *{DRUM_FILE} / *{BAND_FILE} stem pairs; "
                                "run `tatumdrum build-dataset --v2 --keep-audio` first")
    out = []
    for d, b in pairs:
        drums, sr1 = sf.read(str(d), dtype="float32", always_2d=True)
        band, sr2 = sf.read(str(b), dtype="float32", always_2d=True)
        if sr1 != SAMPLE_RATE or sr2 != SAMPLE_RATE:
            raise ValueError(f"{d}: stems must be {SAMPLE_RATE} Hz")
        n = min(len(drums), len(band))
        out.append((drums[:n].mean(axis=1), band[:n].mean(axis=1)))
    return out


def random_mixture(stems: list[tuple[np.ndarray, np.ndarray]], n_samples: int, rng: np.random.Generator,
                   cfg: SeparatorConfig) -> tuple[np.ndarray, np.ndarray]:
    """(mixture, drums) of `n_samples`: a fresh mix of random stems at random levels."""
    def take(audio: np.ndarray) -> np.ndarray:
        if len(audio) <= n_samples:
            return np.pad(audio, (0, n_samples - len(audio)))
        start = int(rng.integers(0, len(audio) - n_samples))
        return audio[start:start + n_samples]

    i = int(rng.integers(len(stems)))
    j = int(rng.integers(len(stems))) if rng.random() < cfg.cross_piece else i
    drums, band = take(stems[i][0]), take(stems[j][1])
    drums = drums * np.float32(10 ** (rng.uniform(*cfg.gain_db) / 20))
    band = band * np.float32(10 ** (rng.uniform(*cfg.gain_db) / 20))
    u = rng.random()
    if u < cfg.drums_only:
        band = np.zeros_like(band)
    elif u < cfg.drums_only + cfg.band_only:
        drums = np.zeros_like(drums)
    mix = drums + band
    peak = float(np.max(np.abs(mix)))
    if peak > 1.0:  # keep the mixture in range, as a mastered song is
        mix, drums = mix / peak, drums / peak
    return mix.astype(np.float32), drums.astype(np.float32)


def make_model(cfg: SeparatorConfig, input_mean: np.ndarray | None = None, input_scale: np.ndarray | None = None):
    from openunmix import model as umx_model
    from openunmix.utils import bandwidth_to_max_bin

    max_bin = int(bandwidth_to_max_bin(SAMPLE_RATE, N_FFT, cfg.bandwidth))
    return umx_model.OpenUnmix(nb_bins=N_FFT // 2 + 1, nb_channels=1, hidden_size=cfg.hidden_size,
                               max_bin=max_bin, input_mean=input_mean, input_scale=input_scale)


class Spectrogram(torch.nn.Module):
    """Open-Unmix's own STFT and magnitude, (batch, 1, samples) -> (batch, 1, bins, frames)."""

    def __init__(self) -> None:
        super().__init__()
        from openunmix.transforms import ComplexNorm, make_filterbanks

        self.stft, _ = make_filterbanks(n_fft=N_FFT, n_hop=N_HOP, center=True, sample_rate=float(SAMPLE_RATE))
        self.norm = ComplexNorm(mono=True)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.norm(self.stft(audio))


def input_statistics(stems: list[tuple[np.ndarray, np.ndarray]], cfg: SeparatorConfig, rng: np.random.Generator,
                     n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation per frequency bin of mixture magnitudes (Open-Unmix's input scaler)."""
    from openunmix.utils import bandwidth_to_max_bin

    spec = Spectrogram()
    max_bin = int(bandwidth_to_max_bin(SAMPLE_RATE, N_FFT, cfg.bandwidth))
    seq = int(cfg.seq_seconds * SAMPLE_RATE)
    frames = []
    with torch.no_grad():
        for _ in range(n):
            mix, _ = random_mixture(stems, seq, rng, cfg)
            frames.append(spec(torch.from_numpy(mix)[None, None])[0, 0, :max_bin].T.numpy())
    x = np.concatenate(frames)
    return x.mean(axis=0), np.maximum(x.std(axis=0), 1e-4)


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Signal-to-distortion ratio in dB, the whole signal at once (the MDX challenges' "SDR").

    Written here on purpose: mir_eval's `bss_eval_sources` and museval compute BSS Eval's SDR, a
    different measure (it fits distortion filters in one-second windows) that is not the
    one the MDX results and Open-Unmix's newer reports use, and museval is not installed here; this
    one is a ratio of two sums."""
    num = float(np.sum(reference.astype(np.float64) ** 2))
    den = float(np.sum((reference.astype(np.float64) - estimate) ** 2))
    return 10.0 * np.log10((num + 1e-9) / (den + 1e-9))


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019): the estimate's best-scaled match to the reference."""
    r, e = reference.astype(np.float64), estimate.astype(np.float64)
    alpha = float(np.dot(e, r) / (np.dot(r, r) + 1e-12))
    return sdr(alpha * r, e) if alpha != 0 else -np.inf


def validation_set(folder: Path, cfg: SeparatorConfig, n: int = 16) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed mixtures of validation stems (same-piece, the stems' own levels), 10 s each."""
    stems = load_stems(folder)
    rng = np.random.default_rng(1234)
    fixed = SeparatorConfig(**{**asdict(cfg), "cross_piece": 0.0, "drums_only": 0.0, "band_only": 0.0,
                               "gain_db": (0.0, 0.0)})
    return [random_mixture(stems, 10 * SAMPLE_RATE, rng, fixed) for _ in range(min(n, len(stems)))]


def export(net: torch.nn.Module, cfg: SeparatorConfig, out: Path, info: dict) -> None:
    """Open-Unmix's folder layout: separator.json, drums.json (with the training args) and drums.pth."""
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    tmp = out / f"{TARGET}.pth.tmp"
    torch.save(state, tmp)
    tmp.replace(out / f"{TARGET}.pth")
    args = {"nfft": N_FFT, "nhop": N_HOP, "nb_channels": 1, "hidden_size": cfg.hidden_size,
            "bandwidth": cfg.bandwidth, "seq_dur": cfg.seq_seconds, "batch_size": cfg.batch_size, "lr": cfg.lr,
            "weight_decay": cfg.weight_decay, "seed": cfg.seed, "target": TARGET}
    (out / f"{TARGET}.json").write_text(json.dumps({"args": args, "rate": SAMPLE_RATE, **info}, indent=1))
    (out / "separator.json").write_text(json.dumps({"targets": [TARGET], "rate": SAMPLE_RATE,
                                                    "sample_rate": SAMPLE_RATE, "nfft": N_FFT, "nhop": N_HOP,
                                                    "nb_channels": 1}, indent=1))


ProgressFn = Callable[[str, int, int, dict], None]


def train_separator(cfg: SeparatorConfig, progress: ProgressFn | None = None, resume: bool = True) -> dict:
    """Train, checkpointing to `<out>/drums.chkpnt` every epoch; the best epoch (validation SDR) is exported."""
    data = Path(cfg.data)
    train_dir = data / "train" if (data / "train").is_dir() else data
    valid_dir = data / "validation"
    device = torch.device(cfg.device)
    torch.backends.cudnn.benchmark = True  # fixed example length: let cuDNN pick its fastest LSTM kernels
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    stems = load_stems(train_dir)
    valid = validation_set(valid_dir, cfg) if valid_dir.is_dir() and stem_pairs(valid_dir) else []
    out = Path(cfg.out)
    ckpt_path = out / f"{TARGET}.chkpnt"
    state = {"epoch": 0, "best_sdr": -np.inf, "history": [], "seconds": 0.0}
    if resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        net = make_model(cfg)
        net.load_state_dict(ckpt["net"])
        state = ckpt["state"]
        rng.bit_generator.state = ckpt["rng"]
    else:
        mean, scale = input_statistics(stems, cfg, rng)
        net = make_model(cfg, mean, scale)
    net.to(device)
    spec = Spectrogram().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if resume and ckpt_path.is_file():
        opt.load_state_dict(ckpt["opt"])
    seq = int(cfg.seq_seconds * SAMPLE_RATE)
    for epoch in range(state["epoch"], cfg.epochs):
        t0 = time.time()
        net.train()
        total = 0.0
        for step in range(cfg.steps_per_epoch):
            pairs = [random_mixture(stems, seq, rng, cfg) for _ in range(cfg.batch_size)]
            mix = torch.from_numpy(np.stack([p[0] for p in pairs]))[:, None].to(device)
            drums = torch.from_numpy(np.stack([p[1] for p in pairs]))[:, None].to(device)
            with torch.no_grad():
                x, y = spec(mix), spec(drums)
            loss = torch.nn.functional.mse_loss(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
            if progress:
                progress("step", step + 1, cfg.steps_per_epoch, {"epoch": epoch + 1, "loss": total / (step + 1)})
        score = validate(net, valid, device) if valid else -total
        state["seconds"] += time.time() - t0
        state["history"].append({"epoch": epoch + 1, "loss": total / cfg.steps_per_epoch, "valid_sdr": score,
                                 "seconds": round(state["seconds"], 1)})
        if score > state["best_sdr"]:
            state["best_sdr"] = score
            export(net, cfg, out, {"epoch": epoch + 1, "valid_sdr": score, "train_seconds": state["seconds"]})
        state["epoch"] = epoch + 1
        tmp = ckpt_path.with_suffix(".chkpnt.tmp")
        torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "rng": rng.bit_generator.state,
                    "state": state, "config": asdict(cfg)}, tmp)
        tmp.replace(ckpt_path)
        if progress:
            progress("epoch", epoch + 1, cfg.epochs, {"valid_sdr": score, "best_sdr": state["best_sdr"]})
        if cfg.max_minutes is not None and state["seconds"] > 60 * cfg.max_minutes:
            break
    return state


@torch.no_grad()
def validate(net: torch.nn.Module, valid: list[tuple[np.ndarray, np.ndarray]], device: torch.device) -> float:
    """Mean SDR of the drums the model separates from the fixed validation mixtures."""
    from openunmix import model as umx_model

    net.eval()
    sep = umx_model.Separator({TARGET: net}, niter=0, n_fft=N_FFT, n_hop=N_HOP, nb_channels=1,
                              sample_rate=float(SAMPLE_RATE)).to(device)
    scores = []
    for mix, drums in valid:
        est = sep(torch.from_numpy(mix)[None, None].to(device))[0, 0, 0].cpu().numpy()[: len(drums)]
        scores.append(sdr(drums, est))
    net.train()
    return float(np.mean(scores))
