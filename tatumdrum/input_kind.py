"""Is the audio a drum stem or a full mix? One number from the log-mel spectrogram the CRNN hears.

A network that writes a hi-hat with every kick helps in a mix, where guitars mask the hi-hat, and hurts on a
clean drum stem, where the kick is played alone (v2.4's ablations in models/CARD.md). A model file can hold a
second model for stems (`TrainedModel.stem_model`); this module decides, per file, which one hears it.

The measure is the spectral flux below 1.6 kHz per unit of energy there: drums decay between strokes, while
bass, keys, guitars and voices hold their notes, so a mix rises less per frame than it sounds. On GMD's 124
validation renders it tells drums from mix right in 241 of 248 files at 0.133; MDB-dev's four drum stems score
0.17-0.23 and their mixes 0.08-0.10.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

InputKind = Literal["stem", "mix"]
INPUT_KINDS: tuple[str, ...] = ("auto", "stem", "mix")
# Mel bands 0-29 of section IV-A's 80: 20 Hz to 1.6 kHz, where the band holds its notes.
LOW_BANDS = slice(0, 30)
# Set on GMD validation renders (drums against mix) only: fewest files on the wrong side.
STEM_PERCUSSIVENESS = 0.133


def percussiveness(mel: np.ndarray) -> float:
    """Positive spectral flux per unit of energy below 1.6 kHz; `mel` is log(1 + mel) as `log_mel` makes it."""
    energy = np.expm1(np.asarray(mel, dtype=np.float32)[:, LOW_BANDS])
    total = float(energy.sum())
    if total <= 0.0 or len(energy) < 2:
        return 0.0
    return float(np.maximum(np.diff(energy, axis=0), 0.0).sum() / total)


def input_kind(mel: np.ndarray, threshold: float = STEM_PERCUSSIVENESS) -> InputKind:
    """"stem" for a drum stem (percussive enough), else "mix"."""
    return "stem" if percussiveness(mel) >= threshold else "mix"
