"""Library-scale runs: resuming an interrupted folder (--skip-existing), lists with missing files, the
manifest, Ctrl-C while the libraries load, and the Ray engine on a real local cluster with a worker killed
mid-song. Every test runs the real `tatumdrum` command on real audio and reads back what it wrote.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
import pretty_midi
import pytest
import soundfile as sf
from tatumdrum.manifest import read_manifest

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "examples" / "groove.wav"
COMMAND = [sys.executable, "-m", "tatumdrum"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=900)


def start(*args: str) -> subprocess.Popen:
    # A suite started in the background by a non-interactive shell inherits an ignored SIGINT;
    # a user at a terminal has the default, so the child gets it back.
    return subprocess.Popen([*COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def songs(folder: Path, n: int, seconds: float = 4.0) -> list[Path]:
    """`n` songs cut from the example groove, each starting elsewhere so that no two are the same."""
    audio, sr = sf.read(CLIP, dtype="float32")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        offset = int((i % 4) * 0.5 * sr)
        path = folder / f"song{i:02d}.wav"
        sf.write(path, audio[offset: offset + int(seconds * sr)], sr)
        paths.append(path)
    return paths


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_interrupted_folder_run_resumes_with_skip_existing(tmp_path):
    inputs = songs(tmp_path / "songs", 12)
    out, manifest = tmp_path / "out", tmp_path / "run.jsonl"
    proc = start("transcribe", str(tmp_path / "songs"), "-o", str(out), "--format", "mid,json",
                 "--manifest", str(manifest))
    # Interrupt once two songs are done (written and recorded), as a user's Ctrl-C would. Their files
    # land a moment before their manifest lines: waiting for the files alone raced on a loaded machine.
    deadline = time.time() + 300
    while time.time() < deadline and (manifest.read_text().count("\n") if manifest.is_file() else 0) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "interrupted"
    first = read_manifest(manifest)
    assert 2 <= len(first) < len(inputs) and {r["status"] for r in first} == {"ok"}
    # Each recorded song has both its files; every file there is whole, and no temporary file is left.
    kept = snapshot(out)
    done = {str(path) for path in inputs if {f"{path.stem}.mid", f"{path.stem}.json"} <= set(kept)}
    assert {r["input"] for r in first} <= done and len(done) < len(inputs)
    assert all(name.endswith((".mid", ".json")) and not name.startswith(".") for name in kept)
    for name in kept:
        if name.endswith(".json"):
            json.loads((out / name).read_text())

    # Without a choice the next run refuses before any work, naming a finished file and both flags.
    refused = run("transcribe", str(tmp_path / "songs"), "-o", str(out), "--format", "mid,json")
    assert refused.returncode == 1 and "--skip-existing" in refused.stderr and "--overwrite" in refused.stderr
    both = run("transcribe", str(tmp_path / "songs"), "-o", str(out), "--overwrite", "--skip-existing")
    assert both.returncode == 2 and len(both.stderr.strip().splitlines()) == 1

    resumed = run("transcribe", str(tmp_path / "songs"), "-o", str(out), "--format", "mid,json",
                  "--manifest", str(manifest), "--skip-existing")
    assert resumed.returncode == 0, resumed.stderr
    summary = resumed.stderr.strip().splitlines()[-1]
    assert f"{len(inputs) - len(done)} transcribed" in summary and f"{len(done)} skipped" in summary
    after = snapshot(out)
    assert all(after[name] == kept[name] for name in kept)  # the finished files were not touched
    assert len(after) == 2 * len(inputs)
    for mid in out.glob("*.mid"):
        assert pretty_midi.PrettyMIDI(str(mid)).instruments[0].notes
    # The manifest was appended to: the first run's records, then one record per input of the second.
    records = read_manifest(manifest)
    assert records[: len(first)] == first
    second = {r["input"]: r for r in records[len(first):]}
    assert len(records) - len(first) == len(inputs) == len(second)
    assert {i for i, r in second.items() if r["status"] == "skipped"} == done
    for path in inputs:
        record = second[str(path)]
        assert record["outputs"] == [str(out / f"{path.stem}.mid"), str(out / f"{path.stem}.json")]
        assert record["model"] == "bundled crnn.pt" and record["version"] and record["error"] is None
        assert record["options"]["formats"] == ["mid", "json"] and record["options"]["engine"] == "local"
        assert (record["seconds"] > 0) == (record["status"] == "ok")


def test_a_missing_file_in_a_list_fails_alone(tmp_path):
    a, b = songs(tmp_path, 2)
    missing, manifest, out = tmp_path / "missing.wav", tmp_path / "m.jsonl", tmp_path / "out"
    result = run("transcribe", str(a), str(missing), str(b), "-o", str(out), "--manifest", str(manifest))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"error: {missing}: no such file or folder" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "error: 1 of 3 file(s) failed"
    assert sorted(p.name for p in out.iterdir()) == ["song00.mid", "song01.mid"]
    records = {r["input"]: r for r in read_manifest(manifest)}
    assert records[str(missing)]["status"] == "failed" and "no such file" in records[str(missing)]["error"]
    assert records[str(a)]["status"] == records[str(b)]["status"] == "ok"
    # A song that cannot be decoded is reported the same way, and one alone is still a one-line error.
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF, but no audio")
    again = run("transcribe", str(bad), str(a), "-o", str(tmp_path / "out2"))
    assert again.returncode == 1 and "1 of 2" in again.stderr and (tmp_path / "out2" / "song00.mid").is_file()
    alone = run("transcribe", str(missing), "-o", str(tmp_path / "x.mid"))
    assert alone.returncode == 1 and alone.stderr.strip() == f"error: {missing}: no such file or folder"
    # The manifest is checked before any work like every output.
    clash = run("transcribe", str(a), "-o", str(tmp_path / "y.mid"), "--manifest", str(a))
    assert clash.returncode == 1 and "--manifest" in clash.stderr and not (tmp_path / "y.mid").exists()


def test_ctrl_c_while_the_libraries_load_says_interrupted(tmp_path):
    clip = songs(tmp_path, 1)[0]
    for delay in (0.3, 0.6, 1.2):
        proc = start("transcribe", str(clip), "-o", str(tmp_path / f"x{delay}.mid"))
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        if proc.returncode == 0:
            # A machine fast enough to finish first: a press during the shutdown does not fail the run.
            assert (tmp_path / f"x{delay}.mid").is_file()
            continue
        assert proc.returncode == 130 and err.strip() == "interrupted", (delay, err)
        assert not (tmp_path / f"x{delay}.mid").exists()


def _ray_workers_busy() -> list[int]:
    """Pids of Ray workers now running a transcription task (Ray titles them after the task)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(b"ray::_ray_transcribe"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def test_ray_engine_survives_a_killed_worker_and_writes_what_local_writes(tmp_path):
    pytest.importorskip("ray")
    songs(tmp_path / "songs", 5)
    local, remote = tmp_path / "local", tmp_path / "ray"
    result = run("transcribe", str(tmp_path / "songs"), "-o", str(local), "--format", "mid,json,musicxml", "-q")
    assert result.returncode == 0, result.stderr
    # The same refusals before any work, before Ray starts.
    (remote / "song00.mid").parent.mkdir()
    (remote / "song00.mid").write_bytes(b"mine")
    refused = run("transcribe", str(tmp_path / "songs"), "-o", str(remote), "--engine", "ray")
    assert refused.returncode == 1 and "song00.mid: exists" in refused.stderr
    assert run("transcribe", str(tmp_path / "songs"), "--address", "auto").returncode == 2
    (remote / "song00.mid").unlink()

    manifest = tmp_path / "ray.jsonl"
    proc = start("transcribe", str(tmp_path / "songs"), "-o", str(remote), "--format", "mid,json,musicxml",
                 "--engine", "ray", "-j", "2", "--manifest", str(manifest))
    killed = None
    deadline = time.time() + 300
    while killed is None and time.time() < deadline and proc.poll() is None:
        busy = _ray_workers_busy()
        if busy:
            killed = busy[0]
            os.kill(killed, signal.SIGKILL)  # a worker dies mid-song (its first: it was loading the models)
        time.sleep(0.02)
    _, err = proc.communicate(timeout=600)
    assert killed is not None, "no Ray worker was seen transcribing"
    assert proc.returncode == 0, err
    # Nothing of Ray's reaches the user: a line per song and the summary.
    lines = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith("✓") for line in lines[:-1]) and len(lines) == 6, err
    # Every song written once, whole and byte for byte as the local engine writes it.
    assert snapshot_bytes(remote) == snapshot_bytes(local)
    records = read_manifest(manifest)
    assert sorted(r["input"] for r in records) == sorted(str(p) for p in (tmp_path / "songs").iterdir())
    assert {r["status"] for r in records} == {"ok"} and {r["options"]["engine"] for r in records} == {"ray"}
    assert err.strip().splitlines()[-1].startswith("5 transcribed, 0 skipped")


def snapshot_bytes(folder: Path) -> dict[str, bytes]:
    return {name: data for name, (data, _) in snapshot(folder).items()}


def test_manifest_lines_are_json_with_the_documented_keys(tmp_path):
    clip = songs(tmp_path, 1)[0]
    manifest = tmp_path / "deep" / "m.jsonl"
    assert run("transcribe", str(clip), "-o", str(tmp_path / "a.json"), "--manifest", str(manifest),
               "--threshold", "TT=0.7").returncode == 0
    (line,) = manifest.read_text().splitlines()
    record = json.loads(line)
    assert set(record) == {"input", "outputs", "status", "error", "seconds", "model", "options", "version",
                           "finished"}
    assert record["options"]["threshold"] == "TT=0.7" and record["status"] == "ok"
