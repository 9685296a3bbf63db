"""The command line end to end: the bundled model on the example clip, files read back by pretty_midi,
mido and music21, and the error paths a user can hit."""
import json
import subprocess
import sys
from pathlib import Path
import mido
import music21
import numpy as np
import pretty_midi
import pytest
import soundfile as sf
from tatumdrum.metrics import score_onsets
from tatumdrum.writers.midi import read_midi_onsets
from tatumdrum.weights import load_model

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "examples" / "groove.wav"
KNOWN = ROOT / "examples" / "groove.mid"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tatumdrum.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out")
    for name in ("drums.mid", "drums.musicxml", "drums.json"):
        result = run("transcribe", str(CLIP), "-o", str(out / name), "--separation", "none")
        assert result.returncode == 0, result.stderr
    return out


def _f_against_known(estimated: dict[str, np.ndarray]) -> float:
    return score_onsets(read_midi_onsets(KNOWN), estimated)["all"].f_measure


def test_midi_matches_the_known_score(outputs):
    pm = pretty_midi.PrettyMIDI(str(outputs / "drums.mid"))
    assert len(pm.instruments) == 1 and pm.instruments[0].is_drum
    assert {n.pitch for n in pm.instruments[0].notes} <= {36, 38, 42}
    assert _f_against_known(read_midi_onsets(outputs / "drums.mid")) >= 0.9
    # The tempo map follows the beats: the clip is 100 bpm, so the MIDI's beats are 0.6 s apart.
    assert np.median(np.diff(pm.get_beats())) == pytest.approx(0.6, abs=0.02)
    channels = {m.channel for t in mido.MidiFile(str(outputs / "drums.mid")).tracks for m in t if m.type == "note_on"}
    assert channels == {9}


def test_musicxml_opens_in_music21_and_matches(outputs):
    score = music21.converter.parse(str(outputs / "drums.musicxml"))
    part = score.parts[0]
    measures = part.getElementsByClass("Measure")
    assert len(measures) >= 8
    counts = {"BD": 0, "SD": 0, "HH": 0}
    for n in part.recurse().notes:
        for u in (n.notes if isinstance(n, music21.chord.ChordBase) else [n]):
            step = u.displayStep + str(u.displayOctave)
            counts[{"F4": "BD", "C5": "SD", "G5": "HH"}[step]] += 1
    known = read_midi_onsets(KNOWN)
    for name, times in known.items():
        assert abs(counts[name] - len(times)) <= max(2, 0.1 * len(times)), (name, counts)


def test_json_has_onsets_and_probabilities(outputs):
    data = json.loads((outputs / "drums.json").read_text())
    assert _f_against_known({k: np.asarray(v) for k, v in data["onsets"].items()}) >= 0.9
    bundled = load_model(None)
    assert np.asarray(data["probabilities"]).shape[0] == len(data["instruments"]) == len(bundled.instruments) >= 7
    # The versioned schema carries where the score came from and its bars.
    assert (data["schema"], data["version"]) == ("tatumdrum-score", 2)
    assert data["source"] == str(CLIP) and data["model"] == "bundled crnn.pt"
    # The bundled model's thresholds, one per drum (models/CARD.md), as its file carries them: those of the model
    # that heard the clip (a drum stem with a faint band: the stem model), and its given thresholds.
    assert bundled.stem_model is not None and data["input"] in ("stem", "mix")
    heard = bundled.stem_model if data["input"] == "stem" else bundled
    assert data["threshold"] == {i.abbrev: round(float(d), 4) for i, d in zip(heard.instruments, heard.policy.as_array())}
    assert data["given_thresholds"] == [{"drum": d, "given": g, "threshold": t} for d, g, t in heard.policy.given]
    assert len(set(data["threshold"].values())) > 1
    assert data["separation"] is None and abs(data["duration"] - 21.8) < 0.01 and data["beat_source"] == "tracked"
    assert abs(data["tempo_bpm"] - 100) < 1 and sum(b["beats"] for b in data["bars"]) == len(data["beats"]["times"])
    # The bundled model predicts how hard each stroke is: the groove's ghost note (velocity 45) is
    # far quieter than its backbeats (110).
    snare = np.asarray(data["velocities"]["SD"])
    assert len(snare) == len(data["onsets"]["SD"]) and snare.min() < 60 and np.median(snare) > 90


def test_unknown_suffix_is_refused_before_any_work(tmp_path):
    result = run("transcribe", str(CLIP), "-o", str(tmp_path / "drums.pdf"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert ".mid" in result.stderr and not (tmp_path / "drums.pdf").exists()


def test_bad_audio_is_one_line_error_and_no_output(tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really audio")
    result = run("transcribe", str(bad), "-o", str(tmp_path / "x.mid"), "--separation", "none")
    assert result.returncode != 0 and "Traceback" not in result.stderr and "broken.wav" in result.stderr
    assert not (tmp_path / "x.mid").exists()
    missing = run("transcribe", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "y.mid"), "--separation", "none")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr


def test_batch_continues_past_a_bad_file(tmp_path):
    songs = tmp_path / "songs"
    songs.mkdir()
    audio, sr = sf.read(CLIP)
    sf.write(songs / "a.flac", audio[: sr * 8], sr)
    (songs / "b.wav").write_bytes(b"garbage")
    sf.write(songs / "c.ogg", audio[: sr * 8], sr)
    sf.write(songs / "d.mp3", np.stack([audio[: sr * 8]] * 2, axis=1), sr, format="MP3")  # stereo mp3
    out = tmp_path / "scores"
    result = run("transcribe", str(songs), "-o", str(out), "--format", "mid,json", "--separation", "none")
    assert result.returncode != 0 and "1 of 4" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.mid", "c.json", "c.mid", "d.json", "d.mid"]


def test_train_lm_on_a_midi_folder(tmp_path):
    from tatumdrum.lm import load_language_model

    for split in ("train", "test"):
        (tmp_path / split).mkdir()
        (tmp_path / split / "groove.mid").write_bytes(KNOWN.read_bytes())
    out = tmp_path / "bigram.pt"
    result = run("train-lm", "--kind", "bigram", "--midi-dir", str(tmp_path / "train"), "--valid-dir",
                 str(tmp_path / "train"), "--test-dir", str(tmp_path / "test"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][0])
    assert 1.0 < report["test_perplexity"] < 2.0
    assert load_language_model(out).kind == "skip_bigram"
    bad = run("train-lm", "--kind", "gru")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    unknown = run("train-lm", "--kind", "bigram", "--midi-dir", str(tmp_path / "train"), "--instruments", "BD,XX")
    assert unknown.returncode == 2 and "SS" in unknown.stderr and len(unknown.stderr.strip().splitlines()) == 1


def test_train_init_from_a_file_that_is_no_model(tmp_path):
    (tmp_path / "train").mkdir()
    not_a_model = tmp_path / "notes.txt"
    not_a_model.write_text("hello")
    result = run("train", str(tmp_path), "--out", str(tmp_path / "m.pt"), "--init", str(not_a_model))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: --init: {not_a_model}: not a readable model file")
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "m.pt").exists()


def test_train_class_gamma_and_remix_level_errors_name_the_option(tmp_path):
    (tmp_path / "train").mkdir()
    for option, text, says in (("--class-gamma", "SS=x", "not CLASS=WEIGHT"), ("--class-gamma", "XX=3", "unknown class"),
                               ("--class-gamma", "SS=-1", "must be positive"), ("--remix-db", "-6", "not LOW,HIGH"),
                               ("--remix-db", "6,-20", "must not exceed")):
        result = run("train", str(tmp_path), "--out", str(tmp_path / "m.pt"), f"{option}={text}")
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith(f"error: {option}:") and says in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "m.pt").exists()


def test_build_dataset_variation_errors_name_the_option(tmp_path):
    gmd = tmp_path / "gmd"
    gmd.mkdir()
    (gmd / "info.csv").write_text("drummer,session,id,style,bpm,beat_type,time_signature,midi_filename,"
                                  "audio_filename,duration,split\n")
    for args, says in ((("--v2", "--variation", "foo=1"), "NAME one of"), (("--v2", "--variation", "no_hats=2"), "P in [0, 1]"),
                       (("--v2", "--variation", "no_hats"), "NAME=P"), (("--variation", "no_hats=0.5"), "come with --v2")):
        result = run("build-dataset", str(gmd), str(tmp_path / "out"), *args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith("error: --variation") and says in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
    for args, says in ((("--band-percussion", "0.5"), "--band-percussion: the band's layers come with --v2"),
                       (("--v2", "--band-percussion", "2"), "'--band-percussion'")):
        result = run("build-dataset", str(gmd), str(tmp_path / "out"), *args)
        assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
    for text, says in (("loud", "not LOW,HIGH"), ("-10,-24", "must not exceed")):
        result = run("build-dataset", str(gmd), str(tmp_path / "out"), "--v2", f"--drum-to-band={text}")
        assert result.returncode == 2 and result.stderr.startswith("error: --drum-to-band:") and says in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


@pytest.mark.skipif(__import__("shutil").which("mscore3") is None, reason="MuseScore 3 is not installed")
def test_musicxml_opens_in_musescore(outputs, tmp_path):
    # MuseScore renders the score headless; a file it cannot read makes it fail and write nothing.
    result = subprocess.run(["mscore3", "-o", str(tmp_path / "score.png"), str(outputs / "drums.musicxml")],
                            capture_output=True, text=True, timeout=300, env={**__import__("os").environ,
                                                                              "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr[-500:]
    assert list(tmp_path.glob("score*.png"))


def test_several_inputs_refuse_a_single_output_file(tmp_path):
    result = run("transcribe", str(CLIP), str(CLIP), "-o", str(tmp_path / "one.mid"))
    assert result.returncode == 2 and "output folder" in result.stderr and not (tmp_path / "one.mid").exists()
