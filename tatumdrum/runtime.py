"""The CRNN without PyTorch: exported networks (`tatumdrum export`) run by onnxruntime.

An export is a zip: model.json (the layout of weights.TrainedModel: drums, routes, decision policies)
and, per network, two ONNX graphs, the frame-level encoder and the tatum-level decoder. Eq. 1's tatum
pooling sits between them here, in numpy, because the encoder runs while the beats are still being
tracked (inference.Transcriber) and the tatums are not known yet.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

EXPORT_FORMAT = "tatumdrum-onnx-1"


def tatum_max_pool(frames: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Eq. 1 in numpy: G[m] = max over frames t in [spans[m, 0], spans[m, 1]) of F[t]; (T, D) to (M, D).

    model.tatum_max_pool in numpy (spans are never empty, tatums.tatum_frame_spans). A short span
    repeats its last frame up to the longest span's width, which leaves its max unchanged.
    """
    offsets = np.arange(int((spans[:, 1] - spans[:, 0]).max()))
    idx = np.minimum(spans[:, :1] + offsets[None, :], spans[:, 1:] - 1)
    return frames[idx].max(axis=1)


def encode_in_chunks(encode: Callable, mel, radius: int, concat: Callable, chunk_frames: int = 6000):
    """A frame encoder over a long (T, F) spectrogram in overlapping chunks; exact, with no seams.

    Each chunk carries `radius` frames of context (the encoder's receptive radius) on both sides and
    keeps only its centre, so the result equals one pass over the whole song while memory stays
    bounded by the chunk. `encode` maps (T, F) to (T, D); `concat` joins the parts (numpy or torch).
    """
    n = mel.shape[0]
    if n <= chunk_frames:
        return encode(mel)
    parts = []
    for start in range(0, n, chunk_frames):
        stop = min(start + chunk_frames, n)
        lo, hi = max(start - radius, 0), min(stop + radius, n)
        parts.append(encode(mel[lo:hi])[start - lo: start - lo + stop - start])
    return concat(parts)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function in float64, returned as float32 (phi's type)."""
    return (1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))).astype(np.float32)


def _logit(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    p = np.clip(p, eps, 1.0 - eps)
    return np.log(p / (1.0 - p))


def _session(data: bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    # One thread: the encoder runs beside the beat tracker, and `--jobs` runs a song per core.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # warnings of graph optimisation are not the user's
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


class OnnxNetwork:
    """One exported CRNN: the interface inference.py uses (`encode_song`, `decode`), on numpy arrays."""

    def __init__(self, encoder: bytes, decoder: bytes, receptive_radius: int, out_dim: int, velocity: bool):
        self.encoder = _session(encoder)
        self.decoder = _session(decoder)
        self.receptive_radius = receptive_radius
        self.out_dim = out_dim
        self.velocity = velocity

    def eval(self) -> "OnnxNetwork":  # the torch modules' call, so that weights.from_layout serves both
        return self

    def encode(self, mel: np.ndarray) -> np.ndarray:
        """(T, F) log-mel to (T, D) frame features."""
        return self.encoder.run(None, {"mel": mel[None].astype(np.float32, copy=False)})[0][0]

    def encode_song(self, mel: np.ndarray, chunk_frames: int = 6000) -> np.ndarray:
        """`encode` over a whole song in chunks: exact, its memory bounded by the chunk."""
        return encode_in_chunks(self.encode, mel, self.receptive_radius, np.concatenate, chunk_frames)

    def decode(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(S, D) tatum (or frame) features to (K, S) onset logits and velocity logits (None without that head)."""
        outputs = self.decoder.run(None, {"features": features[None].astype(np.float32, copy=False)})
        return outputs[0][0], (outputs[1][0] if self.velocity else None)


class OnnxEnsemble:
    """Several exported CRNNs heard as one, as model.TatumEnsemble: phi and the velocity are the mean of
    the members' sigmoids; each member pools and decodes its own slice of the concatenated frames."""

    def __init__(self, members: list[OnnxNetwork]):
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two networks")
        self.members = members
        self.velocity = all(m.velocity for m in members)

    def eval(self) -> "OnnxEnsemble":
        return self

    def encode_song(self, mel: np.ndarray) -> np.ndarray:
        return np.concatenate([m.encode_song(mel) for m in self.members], axis=1)

    def decode(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        widths = np.cumsum([m.out_dim for m in self.members])[:-1]
        outputs = [m.decode(f) for m, f in zip(self.members, np.split(features, widths, axis=1))]
        phi = np.mean([sigmoid(logits) for logits, _ in outputs], axis=0)
        velocities = [sigmoid(v) for _, v in outputs if v is not None]
        velocity = _logit(np.mean(velocities, axis=0)) if velocities else None
        return _logit(phi), velocity


def load_export(path: Path):
    """A TrainedModel whose networks run in onnxruntime."""
    from .weights import ModelFileError, from_layout

    try:
        with zipfile.ZipFile(path) as z:
            header = json.loads(z.read("model.json"))
            if header.get("format") != EXPORT_FORMAT:
                raise ModelFileError(f"{path}: an export of another format ({header.get('format')}); "
                                     "export the model again with this version")
            networks = [OnnxNetwork(z.read(n["encoder"]), z.read(n["decoder"]), int(n["receptive_radius"]),
                                    int(n["out_dim"]), bool(n["velocity"])) for n in header["networks"]]
    except ModelFileError:
        raise
    except Exception as exc:  # a damaged zip, JSON or graph: onnxruntime's errors have no common base
        raise ModelFileError(f"{path}: not a readable tatumdrum export ({type(exc).__name__})") from None
    try:
        return from_layout(header, networks, OnnxEnsemble)
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
