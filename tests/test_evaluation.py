"""`tatumdrum evaluate` on an MDB-layout folder made from the example clip (real audio, real madmom)."""
import shutil
import subprocess
import sys
from pathlib import Path
import numpy as np
import pretty_midi
from tatumdrum.evaluation import find_tracks, read_onsets_tsv

ROOT = Path(__file__).resolve().parents[1]


def make_mdb_folder(root: Path) -> Path:
    track = root / "Groove"
    track.mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "groove.wav", track / "drums.wav")
    shutil.copy(ROOT / "examples" / "groove.wav", track / "rawsum.wav")
    pm = pretty_midi.PrettyMIDI(str(ROOT / "examples" / "groove.mid"))
    labels = {36: "KD", 38: "SD", 42: "HH", 49: "CY"}
    rows = sorted((n.start, labels.get(n.pitch, "OT")) for i in pm.instruments for n in i.notes)
    (track / "onsets.tsv").write_text("".join(f"{t:.6f}\t{c}\n" for t, c in rows))
    beats = pm.get_beats()
    downbeats = set(np.round(pm.get_downbeats(), 6))
    pos, lines = 0, []
    for b in beats:
        pos = 1 if round(b, 6) in downbeats else pos + 1
        lines.append(f"{b:.6f}\t{pos}\n")
    (track / "beats.tsv").write_text("".join(lines))
    return root


def test_reads_the_mdb_layout(tmp_path):
    root = make_mdb_folder(tmp_path / "mdb")
    tracks = find_tracks(root)
    assert [t.name for t in tracks] == ["Groove"] and set(tracks[0].audio) == {"drums", "mix"}
    onsets = read_onsets_tsv(root / "Groove" / "onsets.tsv")
    assert set(onsets) == {"BD", "SD", "HH", "TT", "CY"} and len(onsets["HH"]) > 20


def test_evaluate_reports_both_beat_conditions(tmp_path):
    root = make_mdb_folder(tmp_path / "mdb")
    report = tmp_path / "table.md"
    result = subprocess.run([sys.executable, "-m", "tatumdrum.cli", "evaluate", str(root), "--sources", "drums",
                             "--report", str(report), "--per-track"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = report.read_text().splitlines()
    rows = [line for line in lines if line.startswith("| drums |") and not line.startswith("| drums | 1 |")]
    assert {r.split("|")[2].strip() for r in rows} == {"estimated", "given"}
    for row in rows:
        f_all = float(row.split("|")[3].split()[0])
        assert f_all >= 90.0, row
    # Beats and bars: beat F and downbeat F with estimated beats, tracked and as written.
    (beat_row,) = [line for line in lines if line.startswith("| drums | 1 |")]
    beat_f, tracked, written = (float(c) for c in beat_row.split("|")[3:6])
    assert beat_f >= 0.95 and 0.0 <= tracked <= 1.0 and 0.0 <= written <= 1.0
    # --per-track: one row per track and condition; with one track it repeats the summed F.
    tracked = {line.split("|")[3].strip(): line.split("|") for line in lines if line.startswith("| Groove | drums")}
    assert set(tracked) == {"estimated", "given"}
    for row in rows:
        cells = tracked[row.split("|")[2].strip()]
        assert float(cells[4]) == float(row.split("|")[3].split()[0])
        assert cells[-3].strip() == "-" or all(part.split()[0] in {"BD", "SD", "HH", "TT", "CY", "SS"}
                                               and int(part.split()[1]) > 0 for part in cells[-3].split(","))


def test_evaluate_refuses_a_folder_without_annotations(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tatumdrum.cli", "evaluate", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "no annotated tracks" in result.stderr and "Traceback" not in result.stderr


def test_evaluate_scores_a_folder_of_transcriptions(tmp_path):
    root = make_mdb_folder(tmp_path / "mdb")
    done = tmp_path / "done"
    done.mkdir()
    # The known score itself, as a transcription, must score 100 %.
    shutil.copy(ROOT / "examples" / "groove.mid", done / "Groove.mid")
    result = subprocess.run([sys.executable, "-m", "tatumdrum.cli", "evaluate", str(root), "--transcriptions", str(done),
                             "--per-track"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    row = [line for line in result.stdout.splitlines() if line.startswith("| transcriptions")][0]
    assert row.split("|")[3].split()[0] == "100.0"
    (tracked,) = [line.split("|") for line in result.stdout.splitlines() if line.startswith("| Groove |")]
    assert float(tracked[4]) == 100.0 and tracked[-3].strip() == tracked[-2].strip() == "-"
    # A transcription with its snare strokes taken out: the misses column names them, per track.
    pm = pretty_midi.PrettyMIDI(str(ROOT / "examples" / "groove.mid"))
    snares = sum(n.pitch == 38 for i in pm.instruments for n in i.notes)
    for inst in pm.instruments:
        inst.notes = [n for n in inst.notes if n.pitch != 38]
    pm.write(str(done / "Groove.mid"))
    result = subprocess.run([sys.executable, "-m", "tatumdrum.cli", "evaluate", str(root), "--transcriptions", str(done),
                             "--per-track"], capture_output=True, text=True, timeout=120)
    (tracked,) = [line.split("|") for line in result.stdout.splitlines() if line.startswith("| Groove |")]
    assert tracked[-2].strip() == f"SD {snares}" and tracked[-3].strip() == "-"


def test_evaluate_audio_with_drum_midi_annotations(tmp_path):
    folder = tmp_path / "pairs"
    folder.mkdir()
    shutil.copy(ROOT / "examples" / "groove.wav", folder / "groove.wav")
    shutil.copy(ROOT / "examples" / "groove.mid", folder / "groove.mid")
    tracks = find_tracks(folder)
    assert [t.name for t in tracks] == ["groove"] and len(tracks[0].reference["SD"]) > 10
    result = subprocess.run([sys.executable, "-m", "tatumdrum.cli", "evaluate", str(folder), "--sources", "mix",
                             "--beats", "given"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    row = [line for line in result.stdout.splitlines() if line.startswith("| mix")][0]
    assert float(row.split("|")[3].split()[0]) >= 90.0


def test_a_side_stick_counts_as_the_snare_only_where_the_annotation_has_no_side_stick(tmp_path):
    from tatumdrum.metrics import fold_to, score_onsets

    written = {"BD": np.array([0.0, 1.0]), "SD": np.array([0.5]), "SS": np.array([1.5]), "OH": np.array([0.25])}
    three = fold_to(written, ("BD", "SD", "HH"))
    assert three["SD"].tolist() == [0.5, 1.5] and three["HH"].tolist() == [0.25] and set(three) == {"BD", "SD", "HH"}
    assert fold_to(written, None) is written and fold_to(written, ("BD", "SD", "SS", "HH", "OH"))["SS"].tolist() == [1.5]
    # A rendered three-class piece labelled GMD's cross-sticks snare; a transcription that writes
    # them as GM 37 (side stick) is right about every stroke there.
    import soundfile as sf

    from tatumdrum.writers.midi import write_midi
    from tatumdrum.score import DrumScore
    from tatumdrum.instruments import EIGHT_CLASSES
    from tatumdrum.tatums import BeatGrid

    folder = tmp_path / "renders"
    folder.mkdir()
    grid = BeatGrid.regular(120.0, 8)
    np.savez(folder / "piece.npz", onset_times_BD=np.array([0.0, 1.0]), onset_times_SD=np.array([0.5, 1.5]),
             onset_times_HH=np.arange(8) * 0.25, beat_times=grid.times, beat_positions=grid.positions,
             instruments=np.array(["BD", "SD", "HH"]))
    sf.write(folder / "piece_drums.flac", np.zeros(44100 * 4, np.float32), 44100)
    on = np.zeros((8, 32), bool)
    row = {i.abbrev: k for k, i in enumerate(EIGHT_CLASSES)}
    on[row["BD"], [0, 8]] = True
    on[row["SD"], 4] = True
    on[row["SS"], 12] = True
    on[row["HH"], range(0, 16, 2)] = True
    done = tmp_path / "done"
    done.mkdir()
    write_midi(DrumScore(grid, 4, on, EIGHT_CLASSES, probabilities=on * 0.9), done / "piece.mid")
    result = subprocess.run([sys.executable, "-m", "tatumdrum.cli", "evaluate", str(folder), "--transcriptions",
                             str(done)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    row_all = [line for line in result.stdout.splitlines() if line.startswith("| transcriptions")][0]
    assert row_all.split("|")[3].split()[0] == "100.0", result.stdout
    # To MDB Drums, whose annotations file cross-sticks under "other", the same stroke is no snare.
    mdb = score_onsets({"SD": np.array([0.5]), "BD": np.array([0.0, 1.0])}, fold_to(written, None))
    assert mdb["SD"].precision == 1.0 and mdb["SD"].estimated == 1
