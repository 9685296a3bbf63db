"""Audio to `DrumScore`: decode, (separate), track beats, split into tatums, log-mel, CRNN, threshold.

Each stage is its own callable so a batch builds the heavy ones once and the benchmark can time them.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .beats import BeatTracker
from .features import MEL, load_audio, log_mel
from .meter import MetricalModel, choose_bars
from .peaks import pick_peaks
from .runtime import sigmoid
from .score import DrumScore
from .tatums import BeatGrid, extend_beats, quantize_to_tatums, tatum_frame_spans
from .weights import TrainedModel, load_model

StageFn = Callable[[str], None]
# Silent frames added around a song before the CRNN (see tatum_outputs); training crops had 8.
EDGE_FRAMES = 16


def tatum_probabilities(model: TrainedModel, mel: np.ndarray, tatum_times: np.ndarray) -> np.ndarray:
    """phi (K, M) for a whole song; long songs run the encoder in chunks (exact, see encode_in_chunks)."""
    return tatum_outputs(model, mel, tatum_times)[0]


def _is_torch(net) -> bool:
    """A torch network (a model file loaded with the `train` extra) rather than an export (runtime.py)."""
    return not hasattr(net, "encode_song")


def encode(model: TrainedModel, mel: np.ndarray):
    """The frame-level encoder's output for a whole song, with EDGE_FRAMES of silence on both sides: a
    numpy array from an export, a tensor from a torch network.

    Training crops always had context around them; without it the encoder's zero padding at the
    song's ends (after batch norm, not what silence looks like) read as a stroke: a phantom hi-hat
    on the last tatum of most songs. It needs no beats, so it can run while the beats are tracked.
    """
    mel = np.pad(np.asarray(mel, dtype=np.float32), ((EDGE_FRAMES, EDGE_FRAMES), (0, 0)))  # log(1 + 0): silence
    if not _is_torch(model.net):
        return model.net.encode_song(mel)
    import torch

    from .model import encode_in_chunks

    with torch.inference_mode():
        # Where the network is: the CPU here, a GPU while `tatumdrum train --device cuda` validates.
        device = next(model.net.parameters()).device
        return encode_in_chunks(model.net.encoder, torch.from_numpy(mel).to(device))


def _decode_steps(net, features, spans: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Onset logits (K, S) and velocity logits (or None) of the decoder over tatums (eq. 1 pooling with
    `spans`) or, with no spans, over frames."""
    if not _is_torch(net):
        from .runtime import tatum_max_pool

        return net.decode(features if spans is None else tatum_max_pool(features, spans))
    import torch

    with torch.inference_mode():
        if spans is not None:
            features = net.pool(features[None], [torch.from_numpy(spans).long().to(features.device)])[0]
        logits, velocity = net.decode(features[None])
        return logits[0].float().cpu().numpy(), None if velocity is None else velocity[0].float().cpu().numpy()


def decode(model: TrainedModel, frames, tatum_times: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """phi (K, M) and, from models with a velocity head, the velocity / 127 of a stroke at each tatum,
    from the encoder's frames (`encode`)."""
    tatum_times = np.asarray(tatum_times, dtype=float) + EDGE_FRAMES / MEL.fps
    if model.kind == "tatum":
        logits, velocity = _decode_steps(model.net, frames, tatum_frame_spans(tatum_times, MEL.fps, len(frames)))
        return sigmoid(logits), None if velocity is None else sigmoid(velocity)
    # Baseline: frame activations, peak picking (eq. 10's companion), then quantisation to tatums.
    act = sigmoid(_decode_steps(model.net, frames, None)[0])[:, EDGE_FRAMES:len(frames) - EDGE_FRAMES]
    tatum_times = tatum_times - EDGE_FRAMES / MEL.fps
    phi = np.zeros((act.shape[0], len(tatum_times)), dtype=np.float32)
    for k in range(act.shape[0]):
        peaks = pick_peaks(act[k], model.policy.thresholds[k])
        idx = quantize_to_tatums(peaks / MEL.fps, tatum_times)
        np.maximum.at(phi[k], idx, act[k, peaks])
    return phi, None


def tatum_outputs(model: TrainedModel, mel: np.ndarray, tatum_times: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """phi (K, M) and velocities (or None) for a whole song: `encode`, then `decode`, by the model that hears
    this kind of audio (`TrainedModel.for_input`)."""
    model = model.for_input(mel)[0]
    return decode(model, encode(model, mel), tatum_times)


def load_metrical_model() -> MetricalModel | None:
    """The bundled metrical drum model (models/lm/meter.json), or None where it is missing."""
    from .weights import bundled_model_path

    path = bundled_model_path("lm/meter.json")
    return MetricalModel.load(path) if path.is_file() else None


@dataclass
class Transcriber:
    """The whole pipeline with its models loaded once."""

    model: TrainedModel
    tatums_per_beat: int = 4
    # One threshold for every drum, or some drums' thresholds over the model's own (decisions.parse_threshold_option).
    threshold: float | dict[str, float] | None = None
    separator: object | None = None  # tatumdrum.separation.DrumSeparator, when separation is on
    beat_tracker: BeatTracker = field(default_factory=BeatTracker)
    # Bars: a forced meter (beats per bar), whether the drums may correct the tracker's bars
    # (meter.py, off by default: on rendered GMD grooves it made bars worse, docs/experiments.md;
    # given beats are never corrected), and a shift of the bar lines in beats.
    meter: int | None = None
    correct_bars: bool = False
    downbeat_shift: int = 0
    metrical_model: MetricalModel | None = field(default_factory=lambda: load_metrical_model())
    # Which of a model's two models hears the audio: auto (input_kind.py decides per file), stem or mix.
    input_kind: str = "auto"

    @classmethod
    def load(cls, model_path: Path | str | None = None, **kwargs) -> "Transcriber":
        model = load_model(model_path)
        model.info.setdefault("name", "bundled crnn.pt" if model_path is None else Path(model_path).name)
        return cls(model, **kwargs)

    def transcribe_audio(self, audio: np.ndarray, beats: BeatGrid | None = None,
                         stage: StageFn | None = None) -> tuple[DrumScore, np.ndarray]:
        """Transcribe mono 44.1 kHz audio; returns the score and the audio the CRNN heard."""
        stage = stage or (lambda name: None)
        drums = audio
        given = beats is not None
        if self.separator is not None:
            stage("separation")
            drums = self.separator.separate(audio, MEL.sample_rate).mean(axis=0)
        if beats is None:
            # The spectrogram and the encoder need no beats: they run beside the beat tracker, on the
            # other core (numpy, scipy's FFT, torch and onnxruntime all work outside the GIL).
            with ThreadPoolExecutor(1) as pool:
                encoded = pool.submit(lambda: self._encode(log_mel(drums)))
                stage("beats")
                # Beats come from the mixture: bass and harmony carry the pulse as much as the drums do.
                beats = self.beat_tracker(audio)
                stage("crnn")
                model, kind, frames = encoded.result()
        else:
            # Given beats (annotations) rarely span the whole file; extend them as tracked ones are.
            beats = extend_beats(beats, len(audio) / MEL.sample_rate)
            stage("features")
            mel = log_mel(drums)
            stage("crnn")
            model, kind, frames = self._encode(mel)
        score = DrumScore(beats, self.tatums_per_beat,
                          np.zeros((len(model.instruments), len(beats.times) * self.tatums_per_beat), bool),
                          model.instruments)
        phi, velocity = decode(model, frames, score.tatum_times)
        # The grid overhangs the audio at both ends; nothing is played where there is no sound.
        # (Half a frame of slack: a tatum at -1e-17 s is a tatum at zero.)
        slack = 0.5 / MEL.fps
        outside = (score.tatum_times < -slack) | (score.tatum_times >= len(audio) / MEL.sample_rate)
        phi[:, outside] = 0.0
        policy = model.policy.overridden(self.threshold)
        described = policy.describe()
        meta = {"model": self.model.info.get("name", "custom"), "threshold": described["threshold"],
                "separation": None if self.separator is None else getattr(self.separator, "source", "open-unmix"),
                "duration": round(len(audio) / MEL.sample_rate, 6), "beats": "given" if given else "tracked"}
        if kind is not None:
            meta["input"] = kind
        if "given_thresholds" in described:
            meta["given_thresholds"] = described["given_thresholds"]
        score = DrumScore(beats, self.tatums_per_beat, policy.decide(phi), model.instruments, phi, velocity,
                          meta)
        score = choose_bars(score, self.metrical_model, self.meter, self.correct_bars and not given,
                            self.downbeat_shift)
        return score, drums

    def _encode(self, mel: np.ndarray) -> tuple[TrainedModel, str | None, object]:
        """The model that hears this log-mel (a stem model for drum stems, where the file has one), the input
        kind it was picked for, and its encoder's frames."""
        model, kind = self.model.for_input(mel, self.input_kind)
        return model, kind, encode(model, mel)

    def transcribe(self, path: Path, beats: BeatGrid | None = None, stage: StageFn | None = None) -> DrumScore:
        (stage or (lambda name: None))("decoding")
        return self.transcribe_audio(load_audio(path), beats, stage)[0]
