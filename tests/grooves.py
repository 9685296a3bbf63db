"""A groove for tests that edit or render drum MIDI (tests import it by name: pytest puts tests/ on the path)."""
import pretty_midi


def four_bar_groove() -> pretty_midi.PrettyMIDI:
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    drums = pretty_midi.Instrument(0, is_drum=True)
    for i in range(32):  # 4 bars of 8th-note hats, kick on 1 and 3, snare on 2 and 4
        t = i * 0.25
        drums.notes.append(pretty_midi.Note(80, 42, t, t + 0.05))
        if i % 4 == 0:
            drums.notes.append(pretty_midi.Note(100, 36 if i % 8 == 0 else 38, t, t + 0.05))
    pm.instruments.append(drums)
    return pm
