"""Pipeline benchmark: real-time factor of each stage and peak memory, measured in one run.

    python bench/pipeline.py                   # 3-minute song, all stages, table on stdout
    python bench/pipeline.py --minutes 10      # the long-song memory check
    python bench/pipeline.py --markdown bench/RESULTS.md

The song is generated here (a composed groove with fills, rendered with a random kit plus a generated
accompaniment), so the benchmark needs no data set. The separation stage uses the bundled separator
(models/separator). "whole pipeline" sums the stages run one after the other; "transcribe_audio
(overlapped)" is the same work as `tatumdrum transcribe` does it, the spectrogram and the CRNN's
encoder running beside the beat tracker.
Real-time factor = processing seconds / audio seconds (lower is faster; 0.05 = 20x faster than real time).
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tatumdrum.beats import BeatTracker  # noqa: E402
from tatumdrum.features import MEL, load_audio, log_mel  # noqa: E402
from tatumdrum.inference import Transcriber, tatum_probabilities  # noqa: E402
from tatumdrum.score import DrumScore  # noqa: E402
from tatumdrum.weights import load_model  # noqa: E402
from tatumdrum.writers import write_score  # noqa: E402


def compose_song(minutes: float, bpm: float = 112.0, seed: int = 0) -> pretty_midi.PrettyMIDI:
    """A rock groove with a fill every eighth bar, long enough for `minutes`."""
    rng = np.random.default_rng(seed)
    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    drums = pretty_midi.Instrument(0, is_drum=True)
    beat = 60.0 / bpm
    n_bars = int(minutes * 60 / (4 * beat))
    for bar in range(n_bars):
        t0 = 0.5 + bar * 4 * beat
        for s in range(16):
            t = t0 + s * beat / 4
            hits = []
            if bar % 8 == 7 and s >= 8:
                hits.append(38 if s % 2 == 0 else rng.choice([45, 48, 38]))
            else:
                if s % 2 == 0:
                    hits.append(46 if s == 14 and bar % 4 == 3 else 42)
                if s in (0, 10) or (s == 7 and rng.random() < 0.3):
                    hits.append(36)
                if s in (4, 12):
                    hits.append(38)
            if s == 0 and bar % 8 == 0:
                hits.append(49)
            for pitch in hits:
                drums.notes.append(pretty_midi.Note(int(rng.integers(70, 120)), int(pitch), t, t + 0.1))
    pm.instruments.append(drums)
    return pm


def make_song(path: Path, minutes: float) -> float:
    from tatumdrum.data.accompaniment import random_accompaniment
    from tatumdrum.data.effects import normalize_peak
    from tatumdrum.data.kits import random_kit, render_drums

    rng = np.random.default_rng(1)
    pm = compose_song(minutes)
    duration = minutes * 60
    drums = render_drums(pm, random_kit(rng), rng, duration)
    beats = pm.get_beats() + 0.5
    positions = np.arange(len(beats)) % 4 + 1
    band = random_accompaniment(beats, positions, duration, rng).audio
    n = min(len(drums), len(band))
    sf.write(path, normalize_peak(drums[:n] + 0.7 * band[:n]), MEL.sample_rate, subtype="PCM_16")
    return n / MEL.sample_rate


def load_separator():
    from tatumdrum.separation import DrumSeparator

    return DrumSeparator.load("bundled"), "bundled separator (models/separator)"


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def run(minutes: float, separation: bool, models: list[Path | None] | None = None
        ) -> tuple[list[tuple[str, float]], float, float, str]:
    """Time every stage once; with several `models`, the CRNN stage of each on the same features."""
    torch.set_num_threads(2)
    models = models or [None]
    work = Path(tempfile.mkdtemp())
    song = work / "song.wav"
    # Rendering the song loads soundfonts; a child process keeps that out of the peak memory measured here.
    subprocess.run([sys.executable, __file__, "--make-song", str(song), "--minutes", str(minutes)], check=True)
    duration = sf.info(str(song)).duration
    loaded = [(Path(m).stem if m else "bundled", load_model(m)) for m in models]
    tracker = BeatTracker()
    separator, sep_note = load_separator() if separation else (None, "")
    times: list[tuple[str, float]] = []

    def timed(name: str, fn):
        t0 = time.perf_counter()
        out = fn()
        times.append((name, time.perf_counter() - t0))
        return out

    audio = timed("decoding", lambda: load_audio(song))
    drums = audio
    if separator is not None:
        drums = timed("separation", lambda: separator.separate(audio, MEL.sample_rate).mean(axis=0))
    grid = timed("beat tracking", lambda: tracker(audio))
    mel = timed("features", lambda: log_mel(drums))
    tatum_times = DrumScore(grid, 4, np.zeros((1, len(grid.times) * 4), bool), loaded[0][1].instruments[:1]).tatum_times
    for i, (name, model) in enumerate(loaded):
        label = "CRNN" if len(loaded) == 1 else f"CRNN [{name}]"
        phi = timed(label, lambda: tatum_probabilities(model, mel, tatum_times))
        if i == 0:
            score = DrumScore(grid, 4, model.policy.decide(phi), model.instruments, probabilities=phi)
    timed("writing (mid+musicxml+json)",
          lambda: [write_score(score, work / f"out.{ext}") for ext in ("mid", "musicxml", "json")])
    # As `transcribe` runs it: the spectrogram and encoder beside the beat tracker (inference.py).
    transcriber = Transcriber(loaded[0][1], separator=separator, beat_tracker=tracker)
    timed("transcribe_audio (overlapped)", lambda: transcriber.transcribe_audio(audio))
    return times, duration, peak_rss_gib(), sep_note


def table(times: list[tuple[str, float]], duration: float, peak: float, note: str, minutes: float) -> str:
    crnn = [(n, t) for n, t in times if n.startswith("CRNN")]
    shared = sum(t for n, t in times if not n.startswith("CRNN") and not n.startswith("transcribe_audio"))
    wholes = [(f"whole pipeline{n[4:]}", shared + t) for n, t in crnn]
    lines = [f"Song: {minutes:g} min generated audio; peak memory {peak:.2f} GiB" + (f"; separation: {note}" if note else ""),
             "", "| stage | seconds | real-time factor | x faster than real time |", "|---|---|---|---|"]
    for name, t in times + wholes:
        lines.append(f"| {name} | {t:.2f} | {t / duration:.4f} | {duration / max(t, 1e-9):.0f}x |")
    if len(wholes) > 1:
        lines += ["", "Whole pipeline against the first model: " +
                  ", ".join(f"{n[len('whole pipeline '):]} {t / wholes[0][1]:.3f}" for n, t in wholes[1:])]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--no-separation", action="store_true")
    ap.add_argument("--markdown", type=Path, help="append the table to this file")
    ap.add_argument("--model", type=Path, action="append",
                    help="time the CRNN of this model file (repeat to compare models in one run; default: bundled)")
    ap.add_argument("--make-song", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.make_song:
        make_song(args.make_song, args.minutes)
        return
    text = table(*run(args.minutes, not args.no_separation, args.model), args.minutes)
    print(text)
    if args.markdown:
        with open(args.markdown, "a") as fh:
            fh.write(text + "\n\n")


if __name__ == "__main__":
    main()
