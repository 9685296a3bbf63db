"""Make the example clip of the end-to-end test: our own rock groove, its score and its audio.

Writes groove.mid (the known score: notes 36, 38 and 42 on channel 10) and groove.wav (44.1 kHz
mono 16-bit: the groove through FluidR3_GM's standard kit plus a quiet generated accompaniment,
also through FluidR3_GM). Everything is fixed: run it again and the files come out the same.

    PYTHONPATH=. python examples/make_example.py [--out examples]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import soundfile as sf

from tatumdrum.data import effects
from tatumdrum.data.accompaniment import melodic_soundfonts, random_accompaniment
from tatumdrum.data.gmd import midi_beat_grid
from tatumdrum.data.kits import render_drums
from tatumdrum.data.synthesis import SAMPLE_RATE, SOUNDFONT_DIRS, Kit

BPM = 100.0
LEAD_IN = 0.5  # seconds of silence before the first downbeat
BARS = 8
SEED = 20240501
TICKS = 480
BAND_BELOW_DRUMS_DB = 12.0  # a quiet band: the drums stay easy to hear
FLUIDR3 = SOUNDFONT_DIRS[0] / "FluidR3_GM.sf2"

KICK, SNARE, HAT = 36, 38, 42


def groove() -> list[tuple[float, int, int]]:
    """(beat from the first downbeat, note, velocity): 7 bars of rock groove, bar 4 varied, bar 8 a fill,
    then a closing hit on the downbeat of bar 9."""
    hits: list[tuple[float, int, int]] = []
    for bar in range(BARS):
        b = 4.0 * bar
        if bar == BARS - 1:
            # Fill: two beats of groove, then sixteenth notes on the snare, getting louder.
            hits += [(b, KICK, 105), (b + 1, SNARE, 110)]
            hits += [(b + e / 2, HAT, 100 if e % 2 == 0 else 72) for e in range(4)]
            hits += [(b + 2 + s / 4, SNARE, 70 + 6 * s) for s in range(8)]
            hits += [(b + 3.5, KICK, 95)]
            continue
        hits += [(b + e / 2, HAT, 100 if e % 2 == 0 else 72) for e in range(8)]
        hits += [(b + 1, SNARE, 112), (b + 3, SNARE, 112)]
        if bar == 3:
            # Variation: kick on 1, the "and" of 2, 3 and the "and" of 3, and a ghost note before beat 4.
            hits += [(b, KICK, 108), (b + 1.5, KICK, 96), (b + 2, KICK, 100), (b + 2.5, KICK, 96),
                     (b + 2.75, SNARE, 45)]
        else:
            hits += [(b, KICK, 108), (b + 2.5, KICK, 100)]
    end = 4.0 * BARS
    hits += [(end, KICK, 115), (end, SNARE, 100), (end, HAT, 110)]
    return sorted(hits)


def write_groove_midi(path: Path) -> None:
    """A type-1 file whose first beat lasts LEAD_IN seconds (a 1/4 lead-in bar), then 4/4 at BPM.

    The file's own beat grid then puts the first downbeat of the groove at LEAD_IN seconds.
    """
    conductor = mido.MidiTrack([
        mido.MetaMessage("track_name", name="groove", time=0),
        mido.MetaMessage("time_signature", numerator=1, denominator=4, time=0),
        mido.MetaMessage("set_tempo", tempo=int(round(LEAD_IN * 1e6)), time=0),
        mido.MetaMessage("time_signature", numerator=4, denominator=4, time=TICKS),
        mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(BPM), time=0),
        mido.MetaMessage("end_of_track", time=0),
    ])
    events = []
    for beat, note, vel in groove():
        tick = TICKS + int(round(beat * TICKS))
        events.append((tick, 1, mido.Message("note_on", channel=9, note=note, velocity=vel)))
        events.append((tick + TICKS // 8, 0, mido.Message("note_off", channel=9, note=note, velocity=0)))
    drums = mido.MidiTrack([mido.MetaMessage("track_name", name="drums", time=0)])
    now = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        drums.append(msg.copy(time=tick - now))
        now = tick
    drums.append(mido.MetaMessage("end_of_track", time=0))
    mido.MidiFile(type=1, ticks_per_beat=TICKS, tracks=[conductor, drums]).save(str(path))


def render_groove(midi_path: Path) -> np.ndarray:
    pm = pretty_midi.PrettyMIDI(str(midi_path))
    rng = np.random.default_rng(SEED)
    end = LEAD_IN + (4 * BARS + 1) * 60.0 / BPM
    duration = end + 1.5
    kit = Kit("FluidR3_GM/Standard", "soundfont", FLUIDR3, 128, 0, "FluidR3_GM")
    drums = render_drums(pm, kit, rng, duration, vary=False)
    # The band plays along the groove's beats (not the lead-in beat) and stops on the closing hit.
    grid = midi_beat_grid(pm)
    keep = grid.times >= LEAD_IN - 1e-6
    beat_times, positions = grid.times[keep], grid.positions[keep]
    kicks = np.array([n.start for n in pm.instruments[0].notes if n.pitch == KICK])
    band = random_accompaniment(beat_times, positions, duration, rng, kick_times=kicks, soundfont="FluidR3_GM",
                                end_time=end, melody=False).audio
    band = effects.gain(band, effects.rms_db(drums) - BAND_BELOW_DRUMS_DB - effects.rms_db(band))
    return effects.normalize_peak(drums + band, -1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    if not FLUIDR3.is_file() or "FluidR3_GM" not in melodic_soundfonts():
        raise SystemExit(f"{FLUIDR3} is missing: install the fluid-soundfont-gm package")
    args.out.mkdir(parents=True, exist_ok=True)
    midi_path, wav_path = args.out / "groove.mid", args.out / "groove.wav"
    write_groove_midi(midi_path)
    audio = render_groove(midi_path)
    sf.write(wav_path, audio, SAMPLE_RATE, subtype="PCM_16")
    print(f"wrote {midi_path} and {wav_path} ({len(audio) / SAMPLE_RATE:.1f} s)")


if __name__ == "__main__":
    main()
