"""Experiment (issue 27, not in the package): bar lines from madmom's downbeat activations and the
transcribed drums, decoded jointly. On GMD validation renders it did not beat madmom's own downbeats
(bench/BARS.md), so tatumdrum does not use it; it is kept to reproduce that result and to build on.

    python bench/joint_bars.py GMD FOLDER [FOLDER ...] [--model bars.json]

fits the drum model on GMD's train split (or loads it), then for each rendered beat groove in the
folders tracks beats (tatumdrum's decoder), transcribes on them, decodes bars for each candidate
(drum weight x hard/soft strokes x restart probability) and prints downbeat F against madmom's.

Bar lines from the whole evidence: madmom's downbeat activations and the transcribed drums, decoded jointly.

The beats are fixed (the beat tracker's, or the user's); what is hidden is each beat's place in its bar.
One HMM over beats has the states (meter, position in the bar) and two observations per beat:

- madmom's downbeat networks: how strongly the beat reads as a downbeat rather than another beat
  (their downbeat and beat activations at the beat, as madmom's own bar DBN weighs them);
- the drums: the transcribed strokes of the beat and its neighbours, read by a model learnt on the
  Groove MIDI Dataset (`BarModel`: which position in the bar such drums are played at; crashes and
  the ends of fills mark bar starts, backbeats mark 2 and 4).

Viterbi finds the labelling that both explain best, so the drums settle what madmom hears as a tie
(the half-bar shift of a backbeat groove) and madmom settles what the drums cannot (a bar of steady
eighths). A bar may restart (a phase jump: a pickup, a 2/4 bar in a 4/4 song) at a small cost.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from tatumdrum.score import DrumScore
from tatumdrum.tatums import BeatGrid

# The drum groups the bar model listens to, each the instruments whose strokes count for it.
BAR_GROUPS: dict[str, tuple[str, ...]] = {"BD": ("BD",), "SD": ("SD", "SS"), "HH": ("HH", "OH"),
                                          "TT": ("TT",), "CR": ("CR",), "RD": ("RD",)}
METERS = (3, 4)
FORMAT = "tatumdrum-bars-1"


# Each beat is read with the beats either side of it: a fill ends in the beat before a downbeat, a
# crash follows it, and a backbeat needs its neighbours to tell 2 from 4.
CONTEXT_BEATS = 1
L2 = 1e-3


@dataclass
class BarModel:
    """p(position in the bar | the drums of a beat and its neighbours) per meter: a softmax regression
    (a weight per group, tatum and context beat, and a bias, for each position) learnt on drum scores."""

    tatums_per_beat: int
    weights: dict[int, np.ndarray]  # meter -> (features + 1, meter)
    priors: dict[int, np.ndarray]  # meter -> (meter,) share of training beats at each position

    @classmethod
    def fit(cls, scores: Iterable[DrumScore], tatums_per_beat: int = 4, meters: tuple[int, ...] = METERS
            ) -> "BarModel":
        """One regression per meter, on the full bars of the scores in that meter (a score's longest
        bar): a fragment at either end has no reliable position."""
        from scipy.optimize import minimize

        xs: dict[int, list[np.ndarray]] = {n: [] for n in meters}
        ys: dict[int, list[np.ndarray]] = {n: [] for n in meters}
        for score in scores:
            own = int(score.beats.positions.max())
            if score.tatums_per_beat != tatums_per_beat or own not in xs:
                continue
            x = beat_features(group_strokes(score), tatums_per_beat)
            for start, stop in score.bars():
                if stop - start == own:
                    xs[own].append(x[start:stop])
                    ys[own].append(score.beats.positions[start:stop] - 1)
        weights, priors = {}, {}
        for n in meters:
            x, onehot = np.concatenate(xs[n]), np.eye(n)[np.concatenate(ys[n])]

            def loss(flat: np.ndarray) -> tuple[float, np.ndarray]:
                w = flat.reshape(x.shape[1], n)
                logp = _log_softmax(x @ w)
                grad = x.T @ (np.exp(logp) - onehot) / len(x) + L2 * w
                return float(-np.mean(np.sum(onehot * logp, axis=1)) + 0.5 * L2 * np.sum(w * w)), grad.ravel()

            fit = minimize(loss, np.zeros(x.shape[1] * n), jac=True, method="L-BFGS-B", options={"maxiter": 500})
            weights[n], priors[n] = fit.x.reshape(x.shape[1], n), onehot.mean(axis=0)
        return cls(tatums_per_beat, weights, priors)

    def log_posterior(self, strokes: np.ndarray, meter: int) -> np.ndarray:
        """(beats, meter) log p(position | drums) of each beat of (groups, tatums) strokes."""
        return _log_softmax(beat_features(strokes, self.tatums_per_beat) @ self.weights[meter])

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({
            "format": FORMAT, "tatums_per_beat": self.tatums_per_beat, "groups": list(BAR_GROUPS),
            "context_beats": CONTEXT_BEATS,
            "weights": {str(n): w.round(6).tolist() for n, w in self.weights.items()},
            "priors": {str(n): p.round(6).tolist() for n, p in self.priors.items()}}))

    @classmethod
    def load(cls, path: Path) -> "BarModel":
        blob = json.loads(Path(path).read_text())
        if blob.get("format") != FORMAT or blob.get("groups") != list(BAR_GROUPS) \
                or blob.get("context_beats") != CONTEXT_BEATS:
            raise ValueError(f"{path}: not a tatumdrum bar model")
        return cls(int(blob["tatums_per_beat"]), {int(n): np.asarray(w) for n, w in blob["weights"].items()},
                   {int(n): np.asarray(p) for n, p in blob["priors"].items()})


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))


def group_strokes(score: DrumScore, soft: bool = False) -> np.ndarray:
    """(groups, tatums) strokes of BAR_GROUPS: any of the group's instruments, or with `soft` the
    largest of their onset probabilities."""
    values = score.probabilities if soft and score.probabilities is not None else score.onsets
    rows = {inst.abbrev: k for k, inst in enumerate(score.instruments)}
    out = np.zeros((len(BAR_GROUPS), score.n_tatums))
    for g, members in enumerate(BAR_GROUPS.values()):
        found = [rows[m] for m in members if m in rows]
        if found:
            out[g] = np.max(np.asarray(values, float)[found], axis=0)
    return out


def beat_features(strokes: np.ndarray, tatums_per_beat: int) -> np.ndarray:
    """(beats, features + 1): each beat's strokes (groups x tatums) beside those of CONTEXT_BEATS beats
    either side (zeros beyond the ends), and a constant 1 for the bias."""
    n_beats = strokes.shape[1] // tatums_per_beat
    per_beat = strokes[:, : n_beats * tatums_per_beat].reshape(strokes.shape[0], n_beats, tatums_per_beat)
    per_beat = per_beat.transpose(1, 0, 2).reshape(n_beats, -1)
    pad = np.zeros((CONTEXT_BEATS, per_beat.shape[1]))
    padded = np.concatenate([pad, per_beat, pad])
    return np.hstack([padded[c: c + n_beats] for c in range(2 * CONTEXT_BEATS + 1)] + [np.ones((n_beats, 1))])


def drum_evidence(strokes: np.ndarray, model: BarModel, meter: int) -> np.ndarray:
    """(beats, meter) scaled log-likelihood of each beat's drums at each position of a `meter`-beat bar:
    the model's log posterior less its log prior (a hybrid HMM's emission)."""
    return model.log_posterior(strokes, meter) - np.log(model.priors[meter])[None, :]


# madmom's activations are read this many frames either side of a beat: the tracker's beats sit on
# activation peaks, given beats (annotations) may be a few frames off them.
ACTIVATION_RADIUS = 3
ACTIVATION_FLOOR = 1e-3


def downbeat_evidence(activations: np.ndarray, times: np.ndarray, fps: float, meter: int) -> np.ndarray:
    """(beats, meter) log-likelihood of madmom's (beat, downbeat) activations at each beat: the
    downbeat activation for position 1, the beat activation for the others (madmom's bar DBN's
    observation model, at the beats). Beats outside the activations give no evidence."""
    out = np.zeros((len(times), meter))
    frames = np.round(np.asarray(times) * fps).astype(int)
    for b, f in enumerate(frames):
        lo, hi = max(f - ACTIVATION_RADIUS, 0), min(f + ACTIVATION_RADIUS + 1, len(activations))
        if lo >= hi:
            continue
        beat, down = activations[lo:hi].max(axis=0)
        out[b, 0] = np.log(down + ACTIVATION_FLOOR)
        out[b, 1:] = np.log(beat + ACTIVATION_FLOOR)
    return out


def viterbi_bars(evidence: dict[int, np.ndarray], restart: float) -> tuple[int, np.ndarray]:
    """The (meter, positions from 0) of the best path through per-meter evidence (beats, meter).

    Within a meter a bar moves on one position per beat; with probability `restart` it jumps to
    another position instead (spread over them). Meters do not change within a song.
    """
    best: tuple[float, int, np.ndarray] | None = None
    for meter, e in evidence.items():
        n_beats = len(e)
        step = np.full((meter, meter), np.log(restart / max(meter - 1, 1)) if restart > 0 else -np.inf)
        for p in range(meter):
            step[p, (p + 1) % meter] = np.log1p(-restart)
        if meter == 1:
            step[:] = 0.0
        delta = e[0].copy()
        back = np.zeros((n_beats, meter), int)
        for b in range(1, n_beats):
            cand = delta[:, None] + step  # from x to
            back[b] = np.argmax(cand, axis=0)
            delta = cand[back[b], np.arange(meter)] + e[b]
        path = np.zeros(n_beats, int)
        path[-1] = int(np.argmax(delta))
        for b in range(n_beats - 1, 0, -1):
            path[b - 1] = back[b, path[b]]
        total = float(delta.max())
        if best is None or total > best[0]:
            best = (total, meter, path)
    assert best is not None
    return best[1], best[2]


@dataclass
class BarDecoder:
    """Joint bar decoding: the weights of the two observations and the cost of a bar restart."""

    model: BarModel | None
    drum_weight: float = 0.5
    restart: float = 1e-3
    soft: bool = False
    meters: tuple[int, ...] = METERS

    def __call__(self, score: DrumScore, activations: np.ndarray | None, fps: float,
                 meters: tuple[int, ...] | None = None) -> BeatGrid:
        """The score's beats with bar positions from madmom's `activations` and the score's drums."""
        meters = meters or self.meters
        times = score.beats.times
        strokes = group_strokes(score, self.soft) if self.model is not None else None
        evidence = {}
        for meter in meters:
            e = np.zeros((len(times), meter))
            if activations is not None:
                e += downbeat_evidence(activations, times, fps, meter)
            if strokes is not None and self.drum_weight > 0 and meter in self.model.weights \
                    and score.tatums_per_beat == self.model.tatums_per_beat:
                e += self.drum_weight * drum_evidence(strokes, self.model, meter)
            evidence[meter] = e
        meter, path = viterbi_bars(evidence, self.restart)
        return BeatGrid(times, path + 1)


CANDIDATES = [(w, soft, restart) for w in (0.0, 0.05, 0.1, 0.25, 0.5, 1.0) for soft in (False, True)
              for restart in (0.0, 1e-6, 1e-3)]


def main(argv: list[str]) -> None:
    import argparse

    from grooves import beat_grooves
    from tatumdrum.beats import BEAT_FPS
    from tatumdrum.evaluation import beat_f
    from tatumdrum.inference import Transcriber
    from tatumdrum.instruments import ALL_INSTRUMENTS
    from tatumdrum.lm_training import load_scores

    parser = argparse.ArgumentParser()
    parser.add_argument("gmd")
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--model", type=Path, default=None, help="a fitted bar model (JSON); fitted and saved here if missing")
    args = parser.parse_args(argv)
    if args.model is not None and args.model.is_file():
        model = BarModel.load(args.model)
    else:
        model = BarModel.fit(load_scores((args.gmd, "train"), 4, ALL_INSTRUMENTS))
        if args.model is not None:
            model.save(args.model)
    transcriber = Transcriber.load(correct_bars=False)
    tracker = transcriber.beat_tracker
    rows = []
    for track, source, audio, activations in beat_grooves(args.folders, tracker):
        beats = tracker.decode(activations)
        if len(beats) < 2:
            continue
        madmom = BeatGrid(beats[:, 0], beats[:, 1].astype(int))
        score, _ = transcriber.transcribe_audio(audio, madmom)
        row = {"source": source, "madmom": beat_f(track.beats, madmom)[1]}
        for w, soft, restart in CANDIDATES:
            bars = BarDecoder(model, drum_weight=w, soft=soft, restart=restart)(score, activations, BEAT_FPS)
            row[(w, soft, restart)] = beat_f(track.beats, bars)[1]
        rows.append(row)
        print(track.name, source, f"madmom {row['madmom']:.3f}", flush=True)
    for source in ("drums", "mix", None):
        mine = [r for r in rows if source is None or r["source"] == source]
        print(f"\n{source or 'all'} ({len(mine)} files): madmom downbeat F {np.mean([r['madmom'] for r in mine]):.3f}")
        for c in CANDIDATES:
            f = np.array([r[c] for r in mine])
            worse = sum(r[c] < r["madmom"] - 1e-9 for r in mine)
            better = sum(r[c] > r["madmom"] + 1e-9 for r in mine)
            print(f"  w {c[0]:<5} {'soft' if c[1] else 'hard'} restart {c[2]:<6}: downbeat F {f.mean():.3f}, "
                  f"worse than madmom on {worse}, better on {better}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
