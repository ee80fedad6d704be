"""liftwatch-edge analyze against MediaPipe Pose, as whole processes on one core.

The tool a user would otherwise pick is MediaPipe Pose (mediapipe==0.10.14, solutions.pose,
model_complexity=1, tracking mode). Both run pinned to CPU 0 (``taskset -c 0``) on the same
clip at the same analysis rate; the machine is shared, so both are timed in the same run,
interleaved, and the ratio is what matters. Speed only counts if nobody is missed, so the
report also says how often each found a person and flags clips where ours sees fewer
persons than labels.csv says are in view.

The peer lives in its own venv (``.bench-venvs/mediapipe``, created on first use) and runs
bench/mediapipe_peer.py. Not part of the test suite: run it by hand,
``.venv/bin/python bench/vs_mediapipe.py --repeat 3 --json out/vs_mediapipe.json``.
"""

from __future__ import annotations

import argparse
import compileall
import csv
import json
import math
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = ROOT / ".bench-venvs" / "mediapipe"
PEER_SCRIPT = Path(__file__).resolve().parent / "mediapipe_peer.py"
# Tested here: mediapipe 0.10.14 runs with numpy 2.x and opencv-contrib-python 5.0, so
# nothing else needs pinning.
PEER_REQUIREMENTS = ("mediapipe==0.10.14",)
PEER_CHECK = (
    "import mediapipe, numpy, cv2; print(mediapipe.__version__, numpy.__version__, cv2.__version__)"
)
DEFAULT_CLIPS = (
    "deadlift-good-000001.mp4",  # 1920x1080
    "deadlift-coach-bad016.mp4",  # 1280x720, people in the background
    "deadlift-side-nico_blocked.mp4",  # 600x600
)
TARGET_SPEEDUP = 1.5
MISSING_TOLERANCE = 0.05
"""How much less often than the peer ours may find a person before a clip is flagged."""
BUSY_RATIO = 1.25
"""Wall time this much above CPU time means the process waited for CPU 0 (a shared machine)."""


@dataclass(frozen=True, slots=True)
class Run:
    """One whole-process run: wall time, CPU time and peak resident memory of the child."""

    wall_s: float
    cpu_s: float
    max_rss_mib: float


@dataclass(frozen=True, slots=True)
class Detections:
    """What one tool found over the analysed frames of a clip."""

    frames: int
    found_fraction: float
    max_persons: int


@dataclass(frozen=True, slots=True)
class ClipResult:
    clip: str
    resolution: str
    labelled_people: int | None
    ours: Run
    peer: Run
    speedup: float
    ours_found: Detections
    peer_found: Detections
    flags: list[str]


def pinned(cmd: Sequence[str]) -> list[str]:
    return ["taskset", "-c", "0", *cmd] if shutil.which("taskset") else list(cmd)


def run_timed(cmd: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Run ``cmd`` to completion; wait4 gives this child's own rusage, not all children's."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{tail}")
    return Run(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        max_rss_mib=usage.ru_maxrss / 1024.0,
    )


def summarise(runs: Sequence[Run], stat: str) -> Run:
    """Median (or best) of each measure over repeated runs."""
    pick = statistics.median if stat == "median" else min
    return Run(
        wall_s=pick(r.wall_s for r in runs),
        cpu_s=pick(r.cpu_s for r in runs),
        max_rss_mib=max(r.max_rss_mib for r in runs),
    )


def peer_python(venv: Path = PEER_VENV) -> Path:
    """The peer venv's python, creating the venv and installing MediaPipe when needed."""
    python = venv / "bin" / "python"
    if python.exists():
        check = subprocess.run([str(python), "-c", PEER_CHECK], capture_output=True, text=True)
        if check.returncode == 0 and check.stdout.startswith("0.10.14 "):
            return python
        print(f"peer venv {venv} is incomplete; reinstalling", file=sys.stderr)
    print(f"creating peer venv {venv} (about 1 GB, a few minutes)", file=sys.stderr)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--progress-bar", "off"]
    for requirement in PEER_REQUIREMENTS:
        print(f"installing {requirement} into the peer venv", file=sys.stderr)
        subprocess.run([*pip, requirement], check=True, stdout=sys.stderr)
    check = subprocess.run([str(python), "-c", PEER_CHECK], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"peer venv cannot import mediapipe:\n{check.stderr[-2000:]}")
    return python


def peer_versions(python: Path) -> dict[str, str]:
    out = subprocess.run([str(python), "-c", PEER_CHECK], capture_output=True, text=True)
    names = ("mediapipe", "numpy", "opencv")
    return dict(zip(names, out.stdout.split(), strict=False))


def compile_ours(package: Path = ROOT / "edge") -> None:
    """Byte-compile our package, as ``pip install`` does (and did for the peer's mediapipe).

    An editable checkout run with PYTHONDONTWRITEBYTECODE=1 (as in the Dockerfiles) would
    otherwise compile ~25 modules from source in every timed run, ~25 ms no installed agent
    spends. Writes only ``__pycache__`` folders, which git ignores.
    """
    compileall.compile_dir(str(package), quiet=1)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open() as f:
        return [json.loads(line) for line in f if line.strip()]


def ours_detections(path: Path) -> Detections:
    counts = [len(r["persons"]) for r in read_jsonl(path) if "persons" in r]  # not lift lines
    return Detections(
        frames=len(counts),
        found_fraction=sum(c > 0 for c in counts) / len(counts) if counts else 0.0,
        max_persons=max(counts, default=0),
    )


def peer_detections(path: Path) -> Detections:
    found = [bool(r["found"]) for r in read_jsonl(path)]
    return Detections(
        frames=len(found),
        found_fraction=sum(found) / len(found) if found else 0.0,
        max_persons=int(any(found)),
    )


def read_labels(clips_dir: Path) -> dict[str, dict[str, str]]:
    path = clips_dir / "labels.csv"
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        return {row["clip"]: row for row in csv.DictReader(f)}


def labelled_people(labels: dict[str, str] | None) -> int | None:
    """Persons labels.csv says are in view: the leading number of its ``people`` column
    (some rows read "1 lifter + background people": at least the one)."""
    found = re.match(r"\s*(\d+)", (labels or {}).get("people") or "")
    return int(found.group(1)) if found else None


def flags_for(ours: Detections, peer: Detections, labelled: int | None) -> list[str]:
    """Why ours might not be finding every person in view on this clip."""
    flags = []
    if labelled is not None and ours.max_persons < labelled:
        flags.append(f"ours finds at most {ours.max_persons} of {labelled} labelled")
    if ours.found_fraction < peer.found_fraction - MISSING_TOLERANCE:
        flags.append("ours finds a person in fewer frames than the peer")
    if ours.frames != peer.frames:
        flags.append(f"analysed frames differ ({ours.frames} vs {peer.frames})")
    return flags


def compare_clip(
    clip: Path,
    ours_cmd: Path,
    peer_cmd: Path,
    fps: float,
    repeat: int,
    stat: str,
    labels: dict[str, str] | None,
    ours_args: Sequence[str] = (),
) -> ClipResult:
    with tempfile.TemporaryDirectory(prefix="vs-mediapipe-") as tmp:
        ours_out, peer_out = Path(tmp) / "ours.jsonl", Path(tmp) / "peer.jsonl"
        ours_argv = pinned([str(ours_cmd), "analyze", str(clip), "--fps", f"{fps:g}"])
        ours_argv += ["--out", str(ours_out), *ours_args]
        peer_argv = pinned([str(peer_cmd), str(PEER_SCRIPT), str(clip), "--fps", f"{fps:g}"])
        peer_argv += ["--out", str(peer_out)]
        ours_runs, peer_runs = [], []
        for i in range(repeat):
            ours_runs.append(run_timed(ours_argv))
            peer_runs.append(run_timed(peer_argv))
            print(
                f"  {clip.name} run {i + 1}/{repeat}: ours {ours_runs[-1].wall_s:.2f} s, "
                f"mediapipe {peer_runs[-1].wall_s:.2f} s",
                file=sys.stderr,
            )
        ours_found, peer_found = ours_detections(ours_out), peer_detections(peer_out)
    ours, peer = summarise(ours_runs, stat), summarise(peer_runs, stat)
    labelled = labelled_people(labels)
    return ClipResult(
        clip=clip.name,
        resolution=(labels or {}).get("resolution", "?"),
        labelled_people=labelled,
        ours=ours,
        peer=peer,
        speedup=peer.wall_s / ours.wall_s,
        ours_found=ours_found,
        peer_found=peer_found,
        flags=flags_for(ours_found, peer_found, labelled),
    )


def print_report(results: Sequence[ClipResult], stat: str, repeat: int, fps: float) -> None:
    print(f"\n{stat} of {repeat} runs each, --fps {fps:g}, pinned to CPU 0 (taskset -c 0)")
    head = (
        f"{'clip':32} {'size':>9} {'frames':>6} {'ours s':>7} {'mp s':>7} {'speedup':>7} "
        f"{'ours cpu':>8} {'mp cpu':>7} {'ours MiB':>8} {'mp MiB':>7} "
        f"{'ours max':>8} {'ours %':>6} {'mp %':>5} {'label':>5}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        label = "?" if r.labelled_people is None else str(r.labelled_people)
        print(
            f"{r.clip:32} {r.resolution:>9} {r.ours_found.frames:>6} {r.ours.wall_s:>7.2f} "
            f"{r.peer.wall_s:>7.2f} {r.speedup:>6.2f}x {r.ours.cpu_s:>8.2f} {r.peer.cpu_s:>7.2f} "
            f"{r.ours.max_rss_mib:>8.0f} {r.peer.max_rss_mib:>7.0f} "
            f"{r.ours_found.max_persons:>8} {100 * r.ours_found.found_fraction:>5.0f}% "
            f"{100 * r.peer_found.found_fraction:>4.0f}% {label:>5}"
        )
        for flag in r.flags:
            print(f"  ! {flag}")
    busy = [
        r.clip
        for r in results
        if max(r.ours.wall_s / r.ours.cpu_s, r.peer.wall_s / r.peer.cpu_s) > BUSY_RATIO
    ]
    if busy:
        print(
            f"  note: wall time is over {BUSY_RATIO:g}x CPU time on {', '.join(busy)}: CPU 0 was "
            "shared with other work; trust the CPU columns more or re-run on a quiet machine"
        )
    print(
        "\nours max = most persons ours found in one frame; ours % / mp % = analysed frames "
        "with at least one person; label = persons in view per labels.csv"
    )


def geomean(values: Sequence[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def summary(results: Sequence[ClipResult]) -> dict[str, Any]:
    """Speedups over all clips, and whether the requirement holds on every one of them."""
    speedups = [r.speedup for r in results]
    cpu_ratios = [r.peer.cpu_s / r.ours.cpu_s for r in results]
    return {
        "speedup_geomean": geomean(speedups),
        "cpu_speedup_geomean": geomean(cpu_ratios),
        "speedup_min": min(speedups),
        "target": TARGET_SPEEDUP,
        "met": min(speedups) >= TARGET_SPEEDUP and not any(r.flags for r in results),
    }


def pick_clips(clips_dir: Path, names: Sequence[str] | None, every: bool) -> list[Path]:
    if every:
        labelled = sorted(read_labels(clips_dir))
        names = labelled or sorted(p.name for p in clips_dir.glob("*.mp4"))
    clips = [clips_dir / n for n in (names or DEFAULT_CLIPS)]
    missing = [str(c) for c in clips if not c.exists()]
    if missing:
        raise SystemExit(f"no such clip: {', '.join(missing)}")
    return clips


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--clips",
        type=Path,
        default=os.environ.get("LIFTWATCH_CLIPS"),
        help="folder of clips with labels.csv (default $LIFTWATCH_CLIPS)",
    )
    parser.add_argument(
        "--clip", action="append", help="clip file name in --clips; repeat for several"
    )
    parser.add_argument("--all", action="store_true", help="every clip in labels.csv")
    parser.add_argument("--fps", type=float, default=10.0, help="analysis rate for both")
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool and clip")
    parser.add_argument("--stat", choices=("median", "best"), default="median")
    parser.add_argument(
        "--ours",
        type=Path,
        default=Path(sys.executable).parent / "liftwatch-edge",
        help="liftwatch-edge to time (default: the one beside this python)",
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument(
        "--ours-args", default="", help="extra analyze options, e.g. '--no-silhouette'"
    )
    args = parser.parse_args(argv)
    if args.clips is None:
        parser.error("give --clips or set LIFTWATCH_CLIPS")
    if not args.ours.exists():
        parser.error(f"{args.ours} not found: pip install -e . into this venv first")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if shutil.which("taskset") is None:
        print("warning: taskset not found; runs are not pinned to one core", file=sys.stderr)

    clips = pick_clips(args.clips, args.clip, args.all)
    compile_ours()
    python = peer_python()
    versions = peer_versions(python)
    print(f"peer: {versions}", file=sys.stderr)
    labels = read_labels(args.clips)
    results = []
    for clip in clips:
        print(f"timing {clip.name}", file=sys.stderr)
        results.append(
            compare_clip(
                clip,
                args.ours,
                python,
                args.fps,
                args.repeat,
                args.stat,
                labels.get(clip.name),
                shlex.split(args.ours_args),
            )
        )
    print_report(results, args.stat, args.repeat, args.fps)
    totals = summary(results)
    print(
        f"speedup (mediapipe s / ours s): geometric mean {totals['speedup_geomean']:.2f}x, "
        f"min {totals['speedup_min']:.2f}x over {len(results)} clips "
        f"(CPU time: geometric mean {totals['cpu_speedup_geomean']:.2f}x)"
    )
    verdict = "met" if totals["met"] else "NOT met"
    print(f"target ≥ {TARGET_SPEEDUP:g}x on every clip with no clip flagged: {verdict}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            **totals,
            "fps": args.fps,
            "repeat": args.repeat,
            "stat": args.stat,
            "pinned": shutil.which("taskset") is not None,
            "ours_args": args.ours_args,
            "peer_versions": versions,
            "per_clip": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
