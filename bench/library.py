"""Folder throughput: songs per minute and peak memory of `tatumdrum transcribe FOLDER` per engine.

    python bench/library.py                          # 20 three-minute songs: --jobs 1, --jobs 2, --engine ray -j 2
    python bench/library.py --songs 8 --minutes 1 --markdown bench/LIBRARY.md

Every configuration is one whole `tatumdrum` process (start-up, model loading and, for Ray, starting a
local cluster included) on the same folder, run one after another in one run of this script. Peak
memory is the largest sum of the resident memory of the command and all its descendants (worker
processes, Ray's daemons), sampled every 0.1 s from /proc; shared pages count once per process, so it
is an upper bound.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "--jobs 1": ["--jobs", "1"],
    "--jobs 2": ["--jobs", "2"],
    "--engine ray -j 2": ["--engine", "ray", "--jobs", "2"],
}


def _children(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _rss_gib(pids: list[int]) -> float:
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024 ** 2


def run_folder(songs: Path, out: Path, extra: list[str]) -> tuple[float, float]:
    """Wall seconds and peak tree memory (GiB) of one folder run."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "tatumdrum", "transcribe", str(songs), "-o", str(out), "-q", *extra]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _rss_gib(_children(proc.pid)))
        time.sleep(0.1)
    wall = time.perf_counter() - started
    err = proc.stderr.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(extra)}: failed: {err.strip()[-500:]}")
    return wall, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--songs", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--markdown", type=Path, help="Also write the table to this file.")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tatumdrum-library-"))
    try:
        songs = work / "songs"
        songs.mkdir()
        first = songs / "song00.wav"
        subprocess.run([sys.executable, str(ROOT / "bench" / "pipeline.py"), "--make-song", str(first),
                        "--minutes", str(args.minutes)], check=True)
        for i in range(1, args.songs):
            shutil.copyfile(first, songs / f"song{i:02d}.wav")
        rows = []
        for name, extra in CONFIGS.items():
            wall, peak = run_folder(songs, work / "out", extra)
            rows.append((name, wall, args.songs / wall * 60, peak))
            print(f"{name}: {wall:.1f} s, {rows[-1][2]:.2f} songs/min, peak {peak:.2f} GiB", flush=True)
        base = rows[0][2]
        lines = [f"{args.songs} songs of {args.minutes:g} min, whole processes, one run:", "",
                 "| engine | wall (s) | songs per minute | vs --jobs 1 | peak memory (GiB) |", "|---|---|---|---|---|"]
        lines += [f"| `{n}` | {w:.1f} | {s:.2f} | {s / base:.2f}x | {m:.2f} |" for n, w, s, m in rows]
        table = "\n".join(lines)
        print(table)
        if args.markdown:
            args.markdown.write_text(table + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
