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
                             "--report", str(report)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = [line for line in report.read_text().splitlines() if line.startswith("| drums")]
    assert {r.split("|")[2].strip() for r in rows} == {"estimated", "given"}
    for row in rows:
        f_all = float(row.split("|")[3].split()[0])
        assert f_all >= 90.0, row


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
    result = subprocess.run([sys.executable, "-m", "tatumdrum.cli", "evaluate", str(root), "--transcriptions", str(done)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    row = [line for line in result.stdout.splitlines() if line.startswith("| transcriptions")][0]
    assert row.split("|")[3].split()[0] == "100.0"


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
