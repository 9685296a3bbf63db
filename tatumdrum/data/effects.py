"""Random audio effects that move rendered drums and mixes towards the variety of real recordings.

Everything is numpy/scipy on mono float32 audio and keeps the length of its input, so that onset
times and the tatum grid stay valid after any chain.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy import signal

from ..features import MEL

SAMPLE_RATE = MEL.sample_rate


def _biquad(b: np.ndarray, a: np.ndarray) -> np.ndarray:
    return np.concatenate([b / a[0], a / a[0]])[None, :]


def peaking_sos(freq: float, gain_db: float, q: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """RBJ-cookbook peaking filter as one second-order section."""
    a_lin = 10 ** (gain_db / 40.0)
    w0 = 2 * np.pi * freq / sr
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * a_lin, -2 * np.cos(w0), 1 - alpha * a_lin])
    a = np.array([1 + alpha / a_lin, -2 * np.cos(w0), 1 - alpha / a_lin])
    return _biquad(b, a)


def shelf_sos(freq: float, gain_db: float, high: bool, sr: int = SAMPLE_RATE, slope: float = 1.0) -> np.ndarray:
    """RBJ-cookbook low or high shelf as one second-order section."""
    a_lin = 10 ** (gain_db / 40.0)
    w0 = 2 * np.pi * freq / sr
    cw, sw = np.cos(w0), np.sin(w0)
    alpha = sw / 2 * np.sqrt((a_lin + 1 / a_lin) * (1 / slope - 1) + 2)
    sq = 2 * np.sqrt(a_lin) * alpha
    sign = 1.0 if high else -1.0
    b = np.array([a_lin * ((a_lin + 1) + sign * (a_lin - 1) * cw + sq),
                  -sign * 2 * a_lin * ((a_lin - 1) + sign * (a_lin + 1) * cw),
                  a_lin * ((a_lin + 1) + sign * (a_lin - 1) * cw - sq)])
    a = np.array([(a_lin + 1) - sign * (a_lin - 1) * cw + sq,
                  sign * 2 * ((a_lin - 1) - sign * (a_lin + 1) * cw),
                  (a_lin + 1) - sign * (a_lin - 1) * cw - sq])
    return _biquad(b, a)


def apply_sos(audio: np.ndarray, sos: np.ndarray) -> np.ndarray:
    return signal.sosfilt(sos, audio).astype(np.float32)


def random_eq(rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Second-order sections of a random mixing EQ: shelves, one to three bells, sometimes a high-pass."""
    sections = [shelf_sos(rng.uniform(60, 250), rng.uniform(-8, 8), False, sr),
                shelf_sos(rng.uniform(3000, 10000), rng.uniform(-10, 6), True, sr)]
    for _ in range(rng.integers(1, 4)):
        sections.append(peaking_sos(float(np.exp(rng.uniform(np.log(100), np.log(8000)))),
                                    rng.uniform(-9, 9), rng.uniform(0.5, 4.0), sr))
    if rng.random() < 0.3:
        # Small speakers and careful mixes both cut the sub-bass.
        sections.append(signal.butter(2, rng.uniform(30, 150), "highpass", fs=sr, output="sos"))
    return np.concatenate(sections, axis=0)


def compress(audio: np.ndarray, threshold_db: float, ratio: float, attack_ms: float, release_ms: float,
             knee_db: float = 6.0, sr: int = SAMPLE_RATE, block: int = 32) -> np.ndarray:
    """Feed-forward peak compressor with a soft knee and automatic make-up gain.

    The detector works on blocks of `block` samples (0.7 ms at 44.1 kHz), which is fine for
    attack times of a millisecond and more and keeps the Python loop short.
    """
    n = len(audio)
    if n == 0:
        return audio
    pad = (-n) % block
    peaks = np.abs(np.pad(audio, (0, pad))).reshape(-1, block).max(axis=1)
    level = 20 * np.log10(np.maximum(peaks, 1e-6))
    over = level - threshold_db
    # Soft knee: quadratic between -knee/2 and +knee/2 around the threshold.
    gr = np.where(over <= -knee_db / 2, 0.0,
                  np.where(over >= knee_db / 2, over * (1 - 1 / ratio),
                           (1 - 1 / ratio) * (over + knee_db / 2) ** 2 / (2 * knee_db)))
    dt = block / sr
    att = np.exp(-dt / max(attack_ms / 1000, 1e-4))
    rel = np.exp(-dt / max(release_ms / 1000, 1e-4))
    smooth = np.empty_like(gr)
    state = 0.0
    for i, target in enumerate(gr.tolist()):
        coeff = att if target > state else rel
        state = coeff * state + (1 - coeff) * target
        smooth[i] = state
    gain_db = -smooth
    makeup = -np.percentile(gain_db, 90) * 0.5
    gain = 10 ** ((gain_db + makeup) / 20)
    centres = (np.arange(len(gain)) + 0.5) * block
    gain_samples = np.interp(np.arange(n), centres, gain)
    return (audio * gain_samples).astype(np.float32)


def reverb_ir(rng: np.random.Generator, rt60: float, sr: int = SAMPLE_RATE, predelay_ms: float = 0.0) -> np.ndarray:
    """A synthetic room impulse response: sparse early reflections, then exponentially decaying noise.

    Highs decay faster than lows, as air and walls absorb them, so the noise is split in three bands
    with their own decay times.
    """
    length = int(min(rt60 * 1.1, 2.0) * sr)
    t = np.arange(length) / sr
    noise = rng.standard_normal(length).astype(np.float32)
    low = signal.sosfilt(signal.butter(2, 500, "lowpass", fs=sr, output="sos"), noise)
    high = signal.sosfilt(signal.butter(2, 4000, "highpass", fs=sr, output="sos"), noise)
    mid = noise - low - high
    damping = rng.uniform(0.35, 0.8)
    tail = (low * np.exp(-6.91 * t / (rt60 * 1.15)) + mid * np.exp(-6.91 * t / rt60)
            + high * np.exp(-6.91 * t / (rt60 * damping)))
    # The diffuse tail builds up over the first tens of milliseconds.
    build = rng.uniform(0.005, 0.04)
    tail *= 1 - np.exp(-t / build)
    early = np.zeros(length)
    for _ in range(rng.integers(4, 12)):
        k = int(rng.uniform(0.002, 0.06) * sr)
        if k < length:
            early[k] += rng.uniform(-1, 1) * np.exp(-6.91 * k / sr / rt60) * 3
    ir = tail + early * np.sqrt(np.mean(tail ** 2) * sr * 0.01)
    ir /= np.sqrt(np.sum(ir ** 2)) + 1e-12
    delay = int(predelay_ms / 1000 * sr)
    return np.concatenate([np.zeros(delay), ir]).astype(np.float32)


def reverb(audio: np.ndarray, ir: np.ndarray, wet_db: float) -> np.ndarray:
    """Dry signal plus the convolution with `ir` at `wet_db` relative to the dry level."""
    wet = signal.oaconvolve(audio, ir)[: len(audio)]
    return (audio + wet * 10 ** (wet_db / 20)).astype(np.float32)


def lowpass(audio: np.ndarray, cutoff: float, sr: int = SAMPLE_RATE, order: int = 8) -> np.ndarray:
    """A steep low-pass, like the band limit of a low-bitrate mp3 or an old recording."""
    sos = signal.butter(order, min(cutoff, sr / 2 * 0.98), "lowpass", fs=sr, output="sos")
    return signal.sosfilt(sos, audio).astype(np.float32)


def add_noise(audio: np.ndarray, rng: np.random.Generator, snr_db: float, pink: bool = False) -> np.ndarray:
    """Hiss or hum-free background noise at `snr_db` below the signal's RMS."""
    noise = rng.standard_normal(len(audio)).astype(np.float32)
    if pink:
        # Paul Kellet's economy pink filter: -3 dB/octave is close enough for a noise floor.
        noise = signal.lfilter([0.049922035, -0.095993537, 0.050612699, -0.004408786],
                               [1, -2.494956002, 2.017265875, -0.522189400], noise).astype(np.float32)
    rms = np.sqrt(np.mean(audio ** 2)) + 1e-9
    noise *= rms * 10 ** (-snr_db / 20) / (np.sqrt(np.mean(noise ** 2)) + 1e-12)
    return (audio + noise).astype(np.float32)


def saturate(audio: np.ndarray, drive_db: float) -> np.ndarray:
    """Soft clipping (tape or console drive), level-matched so that it changes timbre, not loudness."""
    peak = float(np.max(np.abs(audio))) + 1e-9
    x = audio / peak * 10 ** (drive_db / 20)
    y = np.tanh(x)
    return (y / np.max(np.abs(y) + 1e-9) * peak).astype(np.float32)


def gain(audio: np.ndarray, db: float) -> np.ndarray:
    return (audio * np.float32(10 ** (db / 20))).astype(np.float32)


def normalize_peak(audio: np.ndarray, peak_db: float = -1.0) -> np.ndarray:
    """Scale to the given peak level in dBFS; silence stays silence."""
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak <= 0:
        return audio.astype(np.float32)
    return (audio * np.float32(10 ** (peak_db / 20) / peak)).astype(np.float32)


def rms_db(audio: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.asarray(audio, np.float64) ** 2)) + 1e-12))


@dataclass
class EffectChain:
    """A drawn sequence of effects; `names` says what was drawn, for the build's statistics."""

    steps: list[tuple[str, Callable[[np.ndarray], np.ndarray]]] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.steps]

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        out = np.asarray(audio, dtype=np.float32)
        n = len(out)
        for _, step in self.steps:
            out = step(out)
        out = np.nan_to_num(out[:n], nan=0.0, posinf=0.0, neginf=0.0)
        return out.astype(np.float32)


# Probabilities of each effect per stage: "drums" is the drum bus, "accompaniment" the band, "master"
# the whole mix (where band limiting and noise belong, as they come from the medium).
STAGE_PROBABILITIES: dict[str, dict[str, float]] = {
    "drums": {"eq": 0.7, "compress": 0.5, "saturate": 0.15, "reverb": 0.6, "lowpass": 0.05, "noise": 0.05},
    "accompaniment": {"eq": 0.5, "compress": 0.3, "saturate": 0.1, "reverb": 0.5, "lowpass": 0.0, "noise": 0.0},
    "master": {"eq": 0.5, "compress": 0.5, "saturate": 0.1, "reverb": 0.2, "lowpass": 0.25, "noise": 0.3,
               "limit": 0.6},
}


def random_chain(rng: np.random.Generator, stage: str = "drums", sr: int = SAMPLE_RATE) -> EffectChain:
    """A random subset of EQ, compression, saturation, reverb, band limit, noise and gain, in studio order."""
    p = STAGE_PROBABILITIES[stage]
    chain = EffectChain()
    if rng.random() < p["eq"]:
        sos = random_eq(rng, sr)
        chain.steps.append(("eq", lambda x, sos=sos: apply_sos(x, sos)))
    if rng.random() < p["compress"]:
        kw = dict(threshold_db=rng.uniform(-30, -8), ratio=rng.uniform(1.5, 8), attack_ms=rng.uniform(1, 30),
                  release_ms=rng.uniform(40, 300))
        chain.steps.append(("compress", lambda x, kw=kw: compress(x, sr=sr, **kw)))
    if rng.random() < p["saturate"]:
        drive = rng.uniform(0, 12)
        chain.steps.append(("saturate", lambda x, d=drive: saturate(x, d)))
    if rng.random() < p["reverb"]:
        rt60 = rng.uniform(0.2, 1.5)
        ir = reverb_ir(rng, rt60, sr, predelay_ms=rng.uniform(0, 30))
        wet = rng.uniform(-24, -4)
        chain.steps.append(("reverb", lambda x, ir=ir, wet=wet: reverb(x, ir, wet)))
    if rng.random() < p["lowpass"]:
        cutoff = rng.uniform(7000, 16500)
        chain.steps.append(("lowpass", lambda x, c=cutoff: lowpass(x, c, sr)))
    if rng.random() < p["noise"]:
        snr, pink = rng.uniform(30, 60), bool(rng.random() < 0.5)
        noise_rng = np.random.default_rng(rng.integers(2 ** 32))
        chain.steps.append(("noise", lambda x, s=snr, k=pink: add_noise(x, noise_rng, s, k)))
    if rng.random() < p.get("limit", 0.0):
        kw = dict(drive_db=rng.uniform(0, 12), release_ms=rng.uniform(20, 200))
        chain.steps.append(("limit", lambda x, kw=kw: limit(x, **kw)))
    db = rng.uniform(-6, 6)
    chain.steps.append(("gain", lambda x, d=db: gain(x, d)))
    return chain


def amp_sim(audio: np.ndarray, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """A guitar amp and cabinet: tightening high-pass, asymmetric high-gain clipping, a speaker's band.

    Distorted guitars fill 100 Hz-5 kHz with dense, noisy partials whose pick attacks look like
    snare hits to a transcriber trained on clean bands; this is their sound, level-matched.
    """
    peak = float(np.max(np.abs(audio))) + 1e-9
    x = signal.sosfilt(signal.butter(2, rng.uniform(80, 250), "highpass", fs=sr, output="sos"), audio / peak)
    x = signal.sosfilt(peaking_sos(rng.uniform(600, 1200), rng.uniform(0, 8), 0.7, sr), x)
    drive = 10 ** (rng.uniform(12, 36) / 20)
    bias = rng.uniform(0.0, 0.3)
    y = np.tanh(drive * x + bias) - np.tanh(bias)
    cab = [signal.butter(4, rng.uniform(2800, 6000), "lowpass", fs=sr, output="sos"),
           signal.butter(2, rng.uniform(60, 110), "highpass", fs=sr, output="sos"),
           peaking_sos(rng.uniform(1500, 3000), rng.uniform(2, 7), 1.2, sr),
           peaking_sos(rng.uniform(300, 500), rng.uniform(-6, 0), 1.0, sr)]
    y = signal.sosfilt(np.concatenate(cab, axis=0), y)
    return (y / (np.max(np.abs(y)) + 1e-9) * peak).astype(np.float32)


def limit(audio: np.ndarray, drive_db: float = 6.0, release_ms: float = 60.0, sr: int = SAMPLE_RATE) -> np.ndarray:
    """A mastering limiter: `drive_db` of gain, then peaks held under the input's own peak by a look-ahead gain.

    Loudness-war masters squash drum transients against the band; the model must still find them.
    """
    from scipy.ndimage import maximum_filter1d, uniform_filter1d

    ceiling = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if ceiling <= 0:
        return np.asarray(audio, np.float32)
    x = np.asarray(audio, np.float32) * np.float32(10 ** (drive_db / 20))
    look = max(int(0.0015 * sr), 1)
    env = maximum_filter1d(np.abs(x), size=2 * look + 1)
    target = np.minimum(1.0, ceiling / np.maximum(env, 1e-9))
    # Release: the gain recovers over `release_ms`; a minimum filter keeps it at or under target.
    rel = max(int(release_ms / 1000 * sr), 1)
    smooth = uniform_filter1d(-maximum_filter1d(-target, size=rel), size=look)
    out = x * np.minimum(smooth, target)
    return np.clip(out, -ceiling, ceiling).astype(np.float32)
