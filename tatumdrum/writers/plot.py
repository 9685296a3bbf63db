"""A picture of a transcription: the onset probabilities on the tatum grid, the strokes, and the bar lines.

A person checks a transcription faster by looking than by reading MIDI: one row per drum, time in
seconds along the bottom, the model's phi as shading, each stroke as a dot (sized by its velocity
where the model gives one), bar lines with bar numbers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..score import DrumScore

SECONDS_PER_INCH = 4.0
MAX_WIDTH_INCHES = 200.0


def write_png(score: DrumScore, path: Path) -> None:
    """Write the picture of `score` as a PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(score.instruments)
    times = score.tatum_times
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.1
    edges = np.append(times - step / 2, times[-1] + step / 2)
    width = float(np.clip((edges[-1] - max(edges[0], 0.0)) / SECONDS_PER_INCH, 8.0, MAX_WIDTH_INCHES))
    fig, ax = plt.subplots(figsize=(width, 0.45 * k + 1.4), dpi=80)
    phi = score.probabilities if score.probabilities is not None else score.onsets.astype(float)
    ax.pcolormesh(edges, np.arange(k + 1) - 0.5, phi, cmap="Greys", vmin=0.0, vmax=1.0, shading="flat")
    rows, cols = np.nonzero(score.onsets)
    sizes = 14.0 if score.velocities is None else 4.0 + 30.0 * score.velocities[rows, cols]
    ax.scatter(times[cols], rows, s=sizes, c="tab:red", zorder=3, linewidths=0)
    for number, (start, _) in enumerate(score.bars(), start=1):
        t = float(score.beats.times[start])
        ax.axvline(t, color="tab:blue", linewidth=0.8, zorder=2)
        ax.text(t, k - 0.45, str(number), color="tab:blue", fontsize=7, va="bottom")
    ax.set_yticks(range(k), [inst.abbrev for inst in score.instruments])
    ax.set_ylim(k - 0.5, -0.5)
    ax.set_xlim(max(edges[0], 0.0), edges[-1])
    ax.set_xlabel("seconds")
    title = Path(str(score.meta.get("source", ""))).name
    ax.set_title(f"{title}  (phi shaded, strokes in red, bars in blue)".strip(), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
