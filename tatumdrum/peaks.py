"""Peak picking for the frame-level baseline (section IV-D, after Vogl et al.)."""
from __future__ import annotations

import numpy as np


def pick_peaks(activation: np.ndarray, delta: float = 0.2, w1: int = 2, w2: int = 0, w3: int = 2, w4: int = 0,
               w5: int = 2) -> np.ndarray:
    """Frames t where all three conditions hold:

    1. phi[t] = max(phi[t - w1 : t + w2]) (windows include both ends),
    2. phi[t] >= mean(phi[t - w3 : t + w4]) + delta,
    3. t - t_prev > w5, with t_prev the previously picked frame.
    """
    phi = np.asarray(activation, dtype=float)
    picked: list[int] = []
    for t in range(len(phi)):
        lo_max, hi_max = max(t - w1, 0), min(t + w2 + 1, len(phi))
        lo_mean, hi_mean = max(t - w3, 0), min(t + w4 + 1, len(phi))
        if phi[t] < phi[lo_max:hi_max].max():
            continue
        if phi[t] < phi[lo_mean:hi_mean].mean() + delta:
            continue
        if picked and t - picked[-1] <= w5:
            continue
        picked.append(t)
    return np.asarray(picked, dtype=int)
