"""Whole-process benchmark: `tatumdrum` from start-up to written file, this checkout in a light install
(no torch) and in a full one, against a baseline commit (v2.8, the last release on PyTorch), in one run.

    python bench/process.py                                  # start-up, the example, 3- and 10-minute songs
    python bench/process.py --minutes 3 --repeats 3 --markdown bench/PROCESS.md
    python bench/process.py --batch 4                        # also songs per minute with --jobs 1 and 2

Each run is a fresh Python process (imports and model loading included), as a user's command is:
- baseline: the commit checked out into a temporary git worktree, run by this interpreter (with torch);
- full: this checkout, run by this interpreter (torch installed; the bundled model runs in onnxruntime);
- light: this checkout, run by the interpreter of a virtual environment made by `pip install .`
  (no torch), created once under --light-venv.
Runs alternate (baseline, full, light, baseline, ...) so that a busy machine penalises all alike; the
table gives medians. All use `--separation none`, the default. Real-time factor (RTF) = wall / audio seconds.
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
V28_RELEASE = "3cee72e"
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


def light_python(venv: Path) -> Path:
    """The interpreter of a light install of this checkout (made once: `pip install .`, no extras)."""
    python = venv / "bin" / "python"
    if not python.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", str(ROOT)], check=True)
    probe = subprocess.run([str(python), "-c", "import importlib.util as u; print(u.find_spec('torch') is None)"],
                           capture_output=True, text=True, check=True)
    if probe.stdout.strip() != "True":
        raise SystemExit(f"{venv}: has torch; give --light-venv a folder for a light install")
    return python


def command(root: Path, python: str, args: list[str], output: Path | None = None) -> tuple[float, float]:
    """Wall seconds and peak memory (GiB) of one `tatumdrum` process of the tree at `root` run by `python`:
    `args`, then `-o output` (removed first) where given."""
    if output is not None:
        if output.is_dir():
            shutil.rmtree(output)
        output.unlink(missing_ok=True)
        args = [*args, "-o", str(output)]
    cmd = [python, "-c", LAUNCH.format(root=str(root)), *args]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{root}: {' '.join(args[:1])} failed: {err.strip()[-500:]}")
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
    ap.add_argument("--repeats", type=int, default=3, help="runs of each setup per item")
    ap.add_argument("--baseline", default=V28_RELEASE, help="commit to compare with (default: v2.8)")
    ap.add_argument("--light-venv", type=Path, default=Path(tempfile.gettempdir()) / "tatumdrum-bench-light",
                    help="virtual environment of the light install (made here if missing)")
    ap.add_argument("--batch", type=int, default=0, help="also time a folder of this many 3-minute songs, --jobs 1 and 2")
    ap.add_argument("--stages", action="store_true", help="also print each tree's stage table (bench/pipeline.py)")
    ap.add_argument("--markdown", type=Path, help="append the tables to this file")
    args = ap.parse_args()
    setups = {"baseline": (worktree(args.baseline), sys.executable), "full": (ROOT, sys.executable),
              "light": (ROOT, str(light_python(args.light_venv)))}
    work = Path(tempfile.mkdtemp())
    items: list[tuple[str, list[str] | None, float | None]] = [("start-up (`--version`)", ["--version"], None)]
    example = ROOT / "examples" / "groove.wav"
    import soundfile as sf

    items.append(("examples/groove.wav", [str(example)], sf.info(str(example)).duration))
    for minutes in args.minutes or [3.0, 10.0]:
        song = work / f"song{minutes:g}.wav"
        items.append((f"{minutes:g}-minute song", [str(song)], make_song(song, minutes)))
    lines = [f"Whole `tatumdrum` processes, `--separation none`, {args.repeats} alternating runs of each setup "
             f"(median s; RTF in brackets); baseline {args.baseline} (torch), this checkout full (torch installed) "
             "and light (`pip install .`, no torch).", "",
             "| item | baseline s | full s | light s | full / baseline | light / baseline | peak GiB (baseline / full / light) |",
             "|---|---|---|---|---|---|---|"]
    for name, item_args, duration in items:
        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in setups}
        for _ in range(args.repeats):
            for setup, (root, python) in setups.items():
                if item_args == ["--version"]:
                    runs[setup].append(command(root, python, item_args))
                else:
                    runs[setup].append(command(root, python, ["transcribe", *item_args, "--separation", "none"],
                                               work / f"{setup}.mid"))
        wall = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
        peak = {k: max(m for _, m in v) for k, v in runs.items()}
        rtf = (lambda k: f" ({wall[k] / duration:.4f})") if duration else (lambda k: "")
        lines.append(f"| {name} | {wall['baseline']:.2f}{rtf('baseline')} | {wall['full']:.2f}{rtf('full')} | "
                     f"{wall['light']:.2f}{rtf('light')} | {wall['full'] / wall['baseline']:.2f} | "
                     f"{wall['light'] / wall['baseline']:.2f} | "
                     f"{peak['baseline']:.2f} / {peak['full']:.2f} / {peak['light']:.2f} |")
        print(lines[-1], flush=True)
    if args.batch:
        folder = work / "batch"
        folder.mkdir()
        seconds = sum(make_song(folder / f"song{i}.wav", 3.0) for i in range(args.batch))
        lines += ["", f"Folder of {args.batch} three-minute songs (this checkout, light install):", "",
                  "| jobs | wall s | songs per minute | RTF |", "|---|---|---|---|"]
        for jobs in (1, 2):
            out = work / f"batch-out-{jobs}"
            wall, _ = command(ROOT, setups["light"][1], ["transcribe", str(folder), "--separation", "none",
                                                          "--jobs", str(jobs)], out)
            lines.append(f"| {jobs} | {wall:.1f} | {60 * args.batch / wall:.1f} | {wall / seconds:.4f} |")
            print(lines[-1], flush=True)
    if args.stages:
        for minutes in args.minutes or [3.0, 10.0]:
            for name, root in (("baseline " + args.baseline, setups["baseline"][0]), ("this checkout", ROOT)):
                lines += ["", f"Stages, {name}:", "", stage_table(root, minutes)]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "a") as fh:
            fh.write("\n" + text + "\n")


if __name__ == "__main__":
    main()
