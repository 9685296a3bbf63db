"""A transcript a musician can trust: no lost files, clear one-line errors, no notes outside the audio.

Every test runs the real `tatumdrum` command on real audio and reads the files it wrote back.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
import numpy as np
import pretty_midi
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "examples" / "groove.wav"
SR = 44100


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tatumdrum.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def one_error_line(result: subprocess.CompletedProcess, *names: str) -> str:
    """The run failed with exactly one line on stderr, naming each of `names`, and no traceback or warning."""
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for name in names:
        assert name in lines[0], lines[0]
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory) -> Path:
    """The first 5 s of the example groove."""
    audio, sr = sf.read(CLIP, dtype="float32")
    path = tmp_path_factory.mktemp("clip") / "short.wav"
    sf.write(path, audio[: 5 * sr], sr)
    return path


def test_batch_mirrors_folders_and_never_overwrites(tmp_path, short_clip):
    songs = tmp_path / "songs"
    for sub in ("a", "b"):
        (songs / sub).mkdir(parents=True)
        (songs / sub / "song.wav").write_bytes(short_clip.read_bytes())
    out = tmp_path / "out"
    # Two worker processes (--jobs), each loading the models once.
    result = run("transcribe", str(songs), "-o", str(out), "--separation", "none", "--format", "mid,json", "-j", "2")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("✓") == 2
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a/song.json", "a/song.mid", "b/song.json", "b/song.mid"]
    before = (out / "a" / "song.mid").read_bytes()
    (out / "a" / "song.mid").write_bytes(b"my edits")
    # A second run refuses before any work, naming the file that exists.
    started = time.perf_counter()
    again = run("transcribe", str(songs), "-o", str(out), "--separation", "none", "--format", "mid,json")
    line = one_error_line(again, str(out / "a" / "song.mid"), "--overwrite")
    assert "exists" in line and time.perf_counter() - started < 30
    assert (out / "a" / "song.mid").read_bytes() == b"my edits"
    forced = run("transcribe", str(songs), "-o", str(out), "--separation", "none", "--overwrite", "--quiet")
    assert forced.returncode == 0 and forced.stderr.strip() == ""
    assert (out / "a" / "song.mid").read_bytes() == before


def test_output_problems_are_found_before_any_work(tmp_path, short_clip):
    take = tmp_path / "take.mid"
    take.write_bytes(short_clip.read_bytes())  # wav audio under a MIDI name
    one_error_line(run("transcribe", str(take), "-o", str(take), "--separation", "none"), str(take), "input")
    assert take.read_bytes() == short_clip.read_bytes()
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder")
    target = blocker / "drums.mid"
    one_error_line(run("transcribe", str(short_clip), "-o", str(target)), str(target))
    # Two inputs that would write one file.
    other = tmp_path / "elsewhere"
    other.mkdir()
    twin = other / short_clip.name
    twin.write_bytes(short_clip.read_bytes())
    out = tmp_path / "flat"
    one_error_line(run("transcribe", str(short_clip), str(twin), "-o", str(out)), str(out / "short.mid"))
    assert not out.exists()
    empty = tmp_path / "nothing_here"
    empty.mkdir()
    one_error_line(run("transcribe", str(empty), "-o", str(tmp_path / "x")), str(empty))


def test_bad_options_and_arguments_get_one_line(tmp_path, short_clip):
    out = tmp_path / "x.mid"
    line = one_error_line(run("transcribe", str(short_clip), "--threshold", "5", "-o", str(out)), "--threshold")
    assert line.startswith("error:") and not out.exists()
    one_error_line(run("train", str(tmp_path), "--band-eq", "2"), "--band-eq")
    one_error_line(run("transcribe", str(short_clip), "--no-such-option"), "--no-such-option")
    one_error_line(run("transcribe"), "inputs")
    one_error_line(run("no-such-command"), "no-such-command")
    assert run("--help").returncode == 0
    version = run("--version")
    assert version.returncode == 0 and version.stderr.strip().startswith("tatumdrum ") and "Traceback" not in version.stderr


def test_bad_audio_gets_one_line_and_no_file(tmp_path):
    rng = np.random.default_rng(0)
    nan = tmp_path / "nan.wav"
    audio = (0.1 * rng.standard_normal(3 * SR)).astype(np.float32)
    audio[1000] = np.nan
    sf.write(nan, audio, SR, subtype="FLOAT")
    dc = tmp_path / "dc.wav"
    sf.write(dc, np.full(3 * SR, 0.4, np.float32), SR, subtype="FLOAT")
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    for path in (nan, dc, junk):
        out = tmp_path / f"{path.stem}.mid"
        line = one_error_line(run("transcribe", str(path), "-o", str(out), "--separation", "none"), str(path))
        assert not out.exists(), line
    assert "NaN" in one_error_line(run("transcribe", str(nan), "-o", str(tmp_path / "n.mid"), "--separation", "none"),
                                   str(nan))


def test_noise_and_tones_get_an_error_not_invented_notes(tmp_path):
    """Non-musical input: white noise, swelling pink noise, a held chord of sines, a sweep."""
    rng = np.random.default_rng(1)
    t = np.arange(12 * SR) / SR
    pink = np.fft.irfft(np.fft.rfft(rng.standard_normal(len(t))) / np.sqrt(np.arange(len(t) // 2 + 1) + 1.0))
    sounds = {
        "white": 0.3 * rng.standard_normal(len(t)),
        "pink": 0.5 * pink / np.abs(pink).max() * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t)),
        "chord": 0.2 * sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)),
        "sweep": 0.5 * np.sin(2 * np.pi * np.cumsum(np.geomspace(50, 15000, len(t))) / SR),
    }
    for name, audio in sounds.items():
        path = tmp_path / f"{name}.wav"
        sf.write(path, audio.astype(np.float32), SR)
        out = tmp_path / f"{name}.mid"
        line = one_error_line(run("transcribe", str(path), "-o", str(out)), str(path))
        assert "no steady beat" in line and not out.exists()


def test_a_cut_off_wav_is_transcribed_with_a_warning(tmp_path, short_clip):
    data = short_clip.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) * 3 // 4])
    out = tmp_path / "cut.mid"
    result = run("transcribe", str(cut), "-o", str(out), "--separation", "none")
    assert result.returncode == 0 and out.is_file()
    assert "warning" in result.stderr and "cut short" in result.stderr and str(cut) in result.stderr


def test_given_beats_are_checked(tmp_path, short_clip):
    out = tmp_path / "x.mid"
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    nan = tmp_path / "nan.txt"
    nan.write_text("0.5 1\nnan 2\n1.7 3\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("".join(f"{100 + 0.6 * i:.2f} {i % 4 + 1}\n" for i in range(20)))
    for beats in (empty, nan, outside):
        one_error_line(run("transcribe", str(short_clip), "-o", str(out), "--beats", str(beats),
                           "--separation", "none"), str(beats))
        assert not out.exists()


def test_notes_before_the_first_beat_are_kept_and_none_fall_outside_the_audio(tmp_path):
    # The example cut to start on its first kick (0.5 s in): given beats that start 0.45 s later
    # (three 16ths) must not lose that kick.
    audio, sr = sf.read(CLIP, dtype="float32")
    clip = tmp_path / "kick_first.wav"
    sf.write(clip, audio[sr // 2: sr // 2 + 5 * sr], sr)
    beats = tmp_path / "late.txt"
    beats.write_text("".join(f"{0.45 + 0.6 * i:.3f} {(i + 3) % 4 + 1}\n" for i in range(8)))
    out = tmp_path / "late.mid"
    result = run("transcribe", str(clip), "-o", str(out), "--beats", str(beats), "--separation", "none")
    assert result.returncode == 0, result.stderr
    notes = pretty_midi.PrettyMIDI(str(out)).instruments[0].notes
    kicks = sorted(n.start for n in notes if n.pitch == 36)
    assert kicks and kicks[0] < 0.03
    assert max(n.start for n in notes) < 5.0
    # A DAW's first bar is the song's first bar: no lead-in bar of absurd tempo.
    _, tempi = pretty_midi.PrettyMIDI(str(out)).get_tempo_changes()
    assert tempi.max() < 2 * 100 and tempi.min() > 100 / 2


def _ctrl_c_as_in_a_terminal() -> None:
    # A suite started in the background by a non-interactive shell inherits an ignored SIGINT, and
    # Python then never raises KeyboardInterrupt; a user at a terminal has the default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_says_interrupted_and_leaves_no_file(tmp_path, short_clip):
    songs = tmp_path / "many"
    songs.mkdir()
    # Enough songs that the batch cannot end between the first file and the signal, on a fast machine too.
    for i in range(24):
        (songs / f"s{i:02d}.wav").write_bytes(short_clip.read_bytes())
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "tatumdrum.cli", "transcribe", str(songs), "-o", str(out),
                             "--separation", "none"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ctrl_c_as_in_a_terminal)
    # Wait until a first song is written (whichever the batch takes first), then interrupt it.
    deadline = time.time() + 300
    while time.time() < deadline and not (out.is_dir() and any(out.glob("*.mid"))):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err
    assert not [p for p in out.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]
    for mid in out.glob("*.mid"):
        pretty_midi.PrettyMIDI(str(mid))  # every file that is there is whole
