"""Whole-process benchmark: `tatumdrum transcribe` from start-up to written file, this checkout against a
baseline commit (the v1 release by default), measured in one run.

    python bench/process.py                                  # 3- and 10-minute songs, 2 runs each
    python bench/process.py --minutes 3 --repeats 3 --markdown bench/RESULTS.md
    python bench/process.py --batch 4                        # also songs per minute with --jobs 1 and 2

Each run is a fresh Python process (imports and model loading included), as a user's command is.
The baseline is checked out into a temporary git worktree and run from there with its own code and
bundled model; runs alternate (baseline, this checkout, baseline, ...) so that a busy machine
penalises both alike. Both use `--separation none`: the default of this checkout, and the setting
the issue's ADTOF comparison used. Stage times come from each tree's own `bench/pipeline.py`.
Real-time factor (RTF) = wall seconds / audio seconds.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
V1_RELEASE = "755286c"
LAUNCH = ("import sys; sys.path.insert(0, {root!r}); import tatumdrum; "
          "assert tatumdrum.__file__.startswith({root!r}), tatumdrum.__file__; "
          "from tatumdrum.cli import main; sys.argv[0] = 'tatumdrum'; main()")


def worktree(commit: str) -> Path:
    """A checkout of `commit` beside the repository (made once, reused)."""
    path = Path(tempfile.gettempdir()) / f"tatumdrum-bench-{commit}"
    if not (path / "tatumdrum").is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--force", "--detach", str(path), commit],
                       check=True, capture_output=True)
    # Installed, models/ is the subpackage tatumdrum.models; give the checkout that layout so that its
    # own bundled models load, not those of an installed tatumdrum.
    link = path / "tatumdrum" / "models"
    if not link.exists():
        link.symlink_to(Path("..") / "models", target_is_directory=True)
    return path


def transcribe(root: Path, args: list[str], output: Path) -> tuple[float, float]:
    """Wall seconds and peak memory (GiB) of one `tatumdrum transcribe` process of the tree at `root`.

    The output is removed first: v1 has no --overwrite (and no --quiet; rich prints nothing to a pipe).
    """
    if output.is_dir():
        shutil.rmtree(output)
    output.unlink(missing_ok=True)
    cmd = [sys.executable, "-c", LAUNCH.format(root=str(root)), "transcribe", *args, "-o", str(output)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{root}: transcribe failed: {err.strip()[-500:]}")
    return wall, usage.ru_maxrss / 1024 ** 2


def make_song(path: Path, minutes: float) -> float:
    subprocess.run([sys.executable, str(ROOT / "bench" / "pipeline.py"), "--make-song", str(path),
                    "--minutes", str(minutes)], check=True)
    import soundfile as sf

    return sf.info(str(path)).duration


def stage_table(root: Path, minutes: float) -> str:
    out = subprocess.run([sys.executable, str(root / "bench" / "pipeline.py"), "--no-separation", "--minutes",
                          str(minutes)], check=True, capture_output=True, text=True, cwd=root)
    return out.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, action="append", help="song length (repeatable; default 3 and 10)")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each tree per song")
    ap.add_argument("--baseline", default=V1_RELEASE, help="commit to compare with (default: the v1 release)")
    ap.add_argument("--batch", type=int, default=0, help="also time a folder of this many 3-minute songs, --jobs 1 and 2")
    ap.add_argument("--stages", action="store_true", help="also print each tree's stage table (bench/pipeline.py)")
    ap.add_argument("--markdown", type=Path, help="append the tables to this file")
    args = ap.parse_args()
    base = worktree(args.baseline)
    work = Path(tempfile.mkdtemp())
    lines = [f"Whole `tatumdrum transcribe` processes, `--separation none`, {args.repeats} alternating runs each "
             f"(median); baseline {args.baseline} against this checkout.", "",
             "| song | baseline s | baseline RTF | this s | this RTF | this / baseline | peak GiB (baseline / this) |",
             "|---|---|---|---|---|---|---|"]
    for minutes in args.minutes or [3.0, 10.0]:
        song = work / f"song{minutes:g}.wav"
        duration = make_song(song, minutes)
        runs: dict[str, list[tuple[float, float]]] = {"base": [], "this": []}
        for _ in range(args.repeats):
            for name, root in (("base", base), ("this", ROOT)):
                # Each tree's own model, named: an installed checkout would lend the baseline its models/.
                model = ["--model", str(root / "models" / "crnn.pt")]
                runs[name].append(transcribe(root, [str(song), "--separation", "none", *model], work / f"{name}.mid"))
        b = statistics.median(w for w, _ in runs["base"])
        t = statistics.median(w for w, _ in runs["this"])
        mb, mt = max(m for _, m in runs["base"]), max(m for _, m in runs["this"])
        lines.append(f"| {minutes:g} min | {b:.2f} | {b / duration:.4f} | {t:.2f} | {t / duration:.4f} | "
                     f"{t / b:.2f} | {mb:.2f} / {mt:.2f} |")
        print(lines[-1], flush=True)
    if args.batch:
        folder = work / "batch"
        folder.mkdir()
        seconds = sum(make_song(folder / f"song{i}.wav", 3.0) for i in range(args.batch))
        lines += ["", f"Folder of {args.batch} three-minute songs (this checkout):", "",
                  "| jobs | wall s | songs per minute | RTF |", "|---|---|---|---|"]
        for jobs in (1, 2):
            out = work / f"batch-out-{jobs}"
            wall, _ = transcribe(ROOT, [str(folder), "--separation", "none", "--jobs", str(jobs)], out)
            lines.append(f"| {jobs} | {wall:.1f} | {60 * args.batch / wall:.1f} | {wall / seconds:.4f} |")
            print(lines[-1], flush=True)
    if args.stages:
        for minutes in args.minutes or [3.0, 10.0]:
            for name, root in (("baseline " + args.baseline, base), ("this checkout", ROOT)):
                lines += ["", f"Stages, {name}:", "", stage_table(root, minutes)]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "a") as fh:
            fh.write("\n" + text + "\n")


if __name__ == "__main__":
    main()
