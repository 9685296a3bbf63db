"""Drum separation with Open-Unmix, the front end of the transcriber.

The paper transcribes separated drums, so the mixture first goes through Open-Unmix's "drums"
target. Only that one target is loaded: the other three are never used and would quadruple the
load time and memory.

Weights come from one of three places:

* ``model="bundled"`` (the default): the project's own separator in ``models/separator/``, trained
  by ``tatumdrum train-separator`` on the v2 renders (see its CARD.md). Always there, offline too.

* ``weights=PATH``: a local file (a drums state dict such as ``drums-69e0ebd4.pth``) or a folder.
  A folder laid out as Open-Unmix's training script writes it (``separator.json``, ``drums.json``,
  ``drums*.pth``) is read by ``openunmix.utils.load_separator`` itself; a folder with only
  ``drums*.pth`` is treated like the file inside it.
* no ``weights``: Open-Unmix's own hub loaders (``openunmix.umxl(targets=["drums"])`` etc.), which
  read torch.hub's cache (``torch.hub.get_dir()/checkpoints``) and download into it on a miss.
  The download is bounded in time and every failure becomes `SeparationUnavailable`.
"""
from __future__ import annotations

import json
import math
import pickle
import socket
import threading
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np
import torch
import torchaudio.functional as AF

import openunmix
from openunmix import model as umx_model
from openunmix import utils as umx_utils

TARGET = "drums"

# File names of the drums weights as openunmix 1.3's `<model>_spec` functions download them; the
# cache is checked for these before anything touches the network. A test compares them with the
# installed openunmix so a changed hash is noticed.
HUB_DRUMS_FILES = {
    "umxl": "drums-69e0ebd4.pth",
    "umxhq": "drums-9619578f.pth",
    "umx": "drums-5a48008b.pth",
}

_FIX = "run `tatumdrum separator download` while online, or pass --separator-weights PATH"
BUNDLED = "bundled"
SEPARATORS = (BUNDLED, *HUB_DRUMS_FILES)


def bundled_separator_path() -> Path:
    """The folder of the project's own separator (Open-Unmix layout), shipped in the package."""
    from .weights import bundled_model_path

    return bundled_model_path("separator")


def cached(model: str) -> bool:
    """Whether `model`'s weights are on this machine without a download (the bundled one always is)."""
    return model == BUNDLED or (model in HUB_DRUMS_FILES and hub_cache_path(model).is_file())

T = TypeVar("T")


class SeparationUnavailable(RuntimeError):
    """The drum separator cannot be loaded; the message says what to do about it."""


def hub_cache_path(model: str = "umxl") -> Path:
    """Where torch.hub keeps (or would keep) the drums weights of a pretrained Open-Unmix model."""
    _check_model_name(model)
    return Path(torch.hub.get_dir()) / "checkpoints" / HUB_DRUMS_FILES[model]


def download(model: str = "umxl", timeout: float = 120.0) -> Path:
    """Fetch the drums weights of `model` into torch.hub's cache ahead of time; return their path."""
    path = hub_cache_path(model)
    if path.is_file():
        return path
    spec_loader = getattr(openunmix, f"{model}_spec")
    # Building the model after the download also proves that the file loads.
    _fetch(model, lambda: spec_loader(targets=[TARGET], device="cpu", pretrained=True), timeout)
    if not path.is_file():
        raise SeparationUnavailable(f"Open-Unmix '{model}' download finished but {path} is missing; {_FIX}")
    return path


class DrumSeparator:
    """An Open-Unmix separator with the drums target only, applied to arbitrary audio."""

    def __init__(
        self,
        separator: umx_model.Separator,
        source: str,  # "bundled", or the weights' path; JSON output names it
        chunk_seconds: float | None = 30.0,
        overlap_seconds: float = 2.0,
    ) -> None:
        separator.freeze()  # eval mode: BatchNorm running stats, no dropout
        self._separator = separator
        self.source = source
        self.chunk_seconds = chunk_seconds
        self.overlap_seconds = overlap_seconds

    @property
    def sample_rate(self) -> int:
        return int(self._separator.sample_rate.item())

    @property
    def device(self) -> torch.device:
        return self._separator.sample_rate.device

    @classmethod
    def load(
        cls,
        model: str = BUNDLED,
        weights: Path | str | None = None,
        device: str | torch.device = "cpu",
        download_timeout: float = 30.0,
        *,
        niter: int = 0,
        chunk_seconds: float | None = 30.0,
        overlap_seconds: float = 2.0,
    ) -> DrumSeparator:
        """Load the drums separator from `weights`, or from the hub cache / a bounded download.

        `niter` is Open-Unmix's number of Wiener EM iterations. The default 0 takes the drums
        magnitude with the mixture phase: EM needs a second source (the residual) and a 2x2
        covariance inversion per bin and frame, which doubled umxl's CPU time here (1.7 -> 3.3
        CPU-seconds per 30 s of audio), for interference reduction that an onset transcriber
        hardly needs.
        """
        if niter < 0:
            raise ValueError("niter must be >= 0")
        # Only EM needs the "everything but drums" residual; without it, it is wasted work.
        options = dict(niter=niter, residual=niter > 0, wiener_win_len=300)
        if weights is not None:
            separator = _load_local(Path(weights).expanduser(), options)
            source = str(weights)
        elif model == BUNDLED:
            separator = _load_local(bundled_separator_path(), options)
            source = BUNDLED
        else:
            separator = _load_hub(model, options, download_timeout)
            source = model
        return cls(separator.to(device), source, chunk_seconds, overlap_seconds)

    def separate(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """The drum stem of `audio` as float32 (channels, samples), same rate and length.

        `audio` is (channels, samples) with 1 or 2 channels, or (samples,), which gives one
        channel back. Mono is duplicated for a stereo model (the official ones) and the stem folded
        back to mono; a mono model (the bundled one) hears stereo folded to mono.
        """
        x = np.asarray(audio, dtype=np.float32)
        if not x.flags.writeable:
            x = x.copy()  # torch.from_numpy warns about read-only arrays
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[0] not in (1, 2):
            raise ValueError(f"expected audio shaped (channels<=2, samples) or (samples,), got {np.shape(audio)}")
        if x.shape[-1] == 0:
            return x.copy()
        with torch.inference_mode():
            return self._separate_chunked(torch.from_numpy(x), int(sr)).numpy()

    def _separate_chunked(self, wav: torch.Tensor, sr: int) -> torch.Tensor:
        """Separate (channels, n) audio in overlapping chunks joined by linear crossfades.

        Chunking, resampling included, keeps memory flat for long songs: only the input and the
        output are song-sized. Where the rate allows (44.1, 22.05, 48, 88.2, 96 kHz...), chunk
        starts fall on STFT hops of the model-rate signal, so the frames of two chunks coincide
        in their overlap and the crossfade mixes like with like.
        """
        n = wav.shape[-1]
        if self.chunk_seconds is None:
            return self._separate_clip(wav, sr)
        quantum = self._aligned_step(sr)
        if quantum > 2 * self.overlap_seconds * sr:
            quantum = 1  # aligning would stretch the overlap too far (e.g. 16 kHz: 10 s steps)
        chunk = max(1, round(self.chunk_seconds * sr / quantum)) * quantum
        overlap = max(1, round(self.overlap_seconds * sr / quantum)) * quantum
        if n <= chunk:
            return self._separate_clip(wav, sr)
        if not 0 < overlap < chunk:
            raise ValueError("overlap_seconds must be positive and shorter than chunk_seconds")
        fade_in = torch.linspace(0.0, 1.0, overlap + 2)[1:-1]
        out = torch.zeros_like(wav)
        start = 0
        while True:
            end = min(start + chunk, n)
            piece = self._separate_clip(wav[:, start:end], sr)
            weight = torch.ones(end - start)
            if start > 0:
                weight[:overlap] = fade_in
            if end < n:
                # The next chunk starts `overlap` before this end, so the two fades sum to one.
                weight[-overlap:] = 1.0 - fade_in
            out[:, start:end] += piece * weight
            if end == n:
                return out
            start = end - overlap

    def _aligned_step(self, sr: int) -> int:
        """Smallest step at `sr` that is a whole number of STFT hops at the model rate.

        A chunk starting at a multiple of sr/g (g = gcd of the rates) resamples onto the same
        model-rate grid as the whole song; the hop condition then lines up the frames too.
        """
        hop = self._separator.stft.n_hop
        g = math.gcd(sr, self.sample_rate)
        return sr // g * (hop // math.gcd(hop, self.sample_rate // g))

    def _separate_clip(self, wav: torch.Tensor, sr: int) -> torch.Tensor:
        """Drums of a (channels, n) clip at `sr`, in one pass of the model; float32 on the CPU."""
        n = wav.shape[-1]
        model_sr = self.sample_rate
        x = wav.to(self.device)
        if sr != model_sr:
            x = AF.resample(x, sr, model_sr)
        length = x.shape[-1]
        # The centred STFT reflect-pads by n_fft/2, which fails on clips shorter than that.
        n_fft = self._separator.stft.n_fft
        if length < n_fft:
            x = torch.nn.functional.pad(x, (0, n_fft - length))
        # Official models are stereo (mono is duplicated); the project's own is mono.
        target = next(iter(self._separator.target_models.values()))
        channels = target.fc1.in_features // target.nb_bins
        if x.shape[0] != channels:
            x = x.mean(dim=0, keepdim=True).expand(channels, -1)
        estimates = self._separator(x.contiguous()[None])  # (batch, targets, channels, n)
        drums = estimates[0, 0, :, :length]  # drums come first; a residual, if any, last
        if drums.shape[0] != wav.shape[0]:
            drums = drums.mean(dim=0, keepdim=True).expand(wav.shape[0], -1)
        if sr != model_sr:
            drums = AF.resample(drums, model_sr, sr)
        return _fit_length(drums, n).to("cpu", torch.float32)


def _fit_length(wav: torch.Tensor, length: int) -> torch.Tensor:
    # Resampling there and back can be a sample off.
    if wav.shape[-1] >= length:
        return wav[..., :length]
    return torch.nn.functional.pad(wav, (0, length - wav.shape[-1]))


def _check_model_name(model: str) -> None:
    if model not in HUB_DRUMS_FILES:
        raise SeparationUnavailable(
            f"unknown Open-Unmix model '{model}' (choose one of {', '.join(SEPARATORS)}), "
            "or pass --separator-weights PATH"
        )


def _load_hub(model: str, options: dict[str, Any], timeout: float) -> umx_model.Separator:
    _check_model_name(model)
    hub_loader = getattr(openunmix, model)

    def build() -> umx_model.Separator:
        return hub_loader(targets=[TARGET], device="cpu", pretrained=True, **options)

    if hub_cache_path(model).is_file():
        # Cached: torch.hub will not touch the network, and a slow disk must not hit the deadline.
        try:
            return build()
        except (OSError, RuntimeError, pickle.UnpicklingError) as exc:
            raise SeparationUnavailable(
                f"cached Open-Unmix weights {hub_cache_path(model)} do not load ({exc}); "
                f"delete the file and {_FIX}"
            ) from exc
    return _fetch(model, build, timeout)


def _fetch(model: str, fetch: Callable[[], T], timeout: float) -> T:
    import contextlib
    import io

    try:
        # torch.hub announces each download on stdout; the caller reports the outcome in its own words.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return _call_with_deadline(fetch, timeout)
    except Exception as exc:  # URLError, HTTPError, timeouts, a truncated file: all mean "not here"
        reason = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        raise SeparationUnavailable(
            f"Open-Unmix '{model}' drum weights are not in {hub_cache_path(model).parent} "
            f"and could not be downloaded ({reason}); {_FIX}"
        ) from exc


def _call_with_deadline(fn: Callable[[], T], timeout: float) -> T:
    """Run `fn` with a hard wall-clock limit.

    The socket default timeout bounds each connect and read inside torch.hub's urlopen (which
    passes none), but not name resolution or a server that trickles bytes; the thread join
    bounds those. A timed-out download goes on in its daemon thread and is dropped at exit;
    torch.hub writes to a temporary file first, so the cache never holds a partial file.
    """
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        worker = threading.Thread(target=work, name="openunmix-download", daemon=True)
        worker.start()
        worker.join(timeout)
    finally:
        socket.setdefaulttimeout(previous)
    if worker.is_alive():
        raise TimeoutError(f"no result within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _load_local(path: Path, options: dict[str, Any]) -> umx_model.Separator:
    if not path.exists():
        raise SeparationUnavailable(f"separator weights {path} do not exist; {_FIX}")
    try:
        if path.is_dir():
            found = sorted(path.glob(f"{TARGET}*.pth"))  # the pattern openunmix's loader globs
            if not found:
                raise SeparationUnavailable(f"no {TARGET}*.pth in {path}; {_FIX}")
            if len(found) > 1:
                names = ", ".join(p.name for p in found)
                raise SeparationUnavailable(f"several drums weights in {path} ({names}); pass one file")
            if (path / "separator.json").is_file():
                return umx_utils.load_separator(
                    str(path), targets=[TARGET], device="cpu", pretrained=True, **options
                )
            path = found[0]
        return _separator_from_state_dict(path, options)
    except SeparationUnavailable:
        raise
    except (OSError, RuntimeError, ValueError, KeyError, pickle.UnpicklingError, json.JSONDecodeError) as exc:
        reason = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        raise SeparationUnavailable(f"cannot load separator weights from {path} ({reason}); {_FIX}") from exc


def _separator_from_state_dict(path: Path, options: dict[str, Any]) -> umx_model.Separator:
    """A one-target Separator around a bare drums state dict, its shape read from the tensors.

    A bare file carries no config, so sizes come from the weights; the STFT is the one every
    official stereo model uses (hop n_fft/4 at 44.1 kHz).
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a training checkpoint (`drums.chkpnt`)
    if not isinstance(state, dict) or "fc1.weight" not in state or "output_scale" not in state:
        raise SeparationUnavailable(f"{path} is not an Open-Unmix target state dict; {_FIX}")
    hidden_size, fc1_inputs = state["fc1.weight"].shape
    max_bin = state["input_mean"].shape[0]
    nb_output_bins = state["output_scale"].shape[0]
    layers = {k for k in state if k.startswith("lstm.weight_ih_l")}
    target = umx_model.OpenUnmix(
        nb_bins=nb_output_bins,
        nb_channels=fc1_inputs // max_bin,
        hidden_size=hidden_size,
        nb_layers=len([k for k in layers if not k.endswith("_reverse")]),
        unidirectional=not any(k.endswith("_reverse") for k in layers),
        max_bin=max_bin,
    )
    # Not strict: old releases carry extra STFT buffers; but every model weight must be there,
    # which openunmix's own strict=False loading does not check.
    missing = target.load_state_dict(state, strict=False).missing_keys
    if missing:
        raise SeparationUnavailable(f"{path} lacks weights {', '.join(missing[:3])}; {_FIX}")
    n_fft = 2 * (nb_output_bins - 1)
    return umx_model.Separator(
        target_models={TARGET: target},
        sample_rate=44100.0,
        n_fft=n_fft,
        n_hop=n_fft // 4,
        nb_channels=fc1_inputs // max_bin,
        **options,
    )
