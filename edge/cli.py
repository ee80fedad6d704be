"""`liftwatch-edge`: the edge agent's command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from edge import __version__

EXIT_USAGE = 2


def _cmd_models(args: argparse.Namespace) -> int:
    from edge.models import check, load_manifest, search_dirs

    manifest = load_manifest()
    unknown = [k for k in args.require or [] if k not in manifest]
    if unknown:
        print(f"error: unknown model(s) {', '.join(unknown)}; known: {', '.join(manifest)}",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    dirs = [Path(args.dir)] if args.dir else search_dirs()
    print(f"looking in: {', '.join(str(d) for d in dirs)}")
    statuses = {key: check(spec, dirs, recheck=True) for key, spec in manifest.items()}
    for key, status in statuses.items():
        if status.ok:
            kind = f"{status.spec.role}, {status.spec.licence.split(' ')[0]}"
            print(f"  ok       {key:24s} {status.path}  [{kind}]")
        else:
            word = "MISSING" if status.path is None else "CORRUPT"
            print(f"  {word:8s} {key:24s} {status.problem}")
    wanted = args.require or list(manifest)
    failing = [k for k in wanted if not statuses[k].ok]
    if failing:
        what = "required " if args.require else ""
        print(f"error: {what}model(s) unavailable: {', '.join(failing)}", file=sys.stderr)
        return 1
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    from edge.analyze import AnalyzeOptions, analyze

    opts = AnalyzeOptions(
        clip=args.clip,
        out=Path(args.out),
        render=Path(args.render) if args.render else None,
        model=args.model,
        refine=_none_or(args.refine),
        fps=args.fps,
        threads=args.threads,
        silhouette=not args.no_silhouette,
        progress=not args.quiet,
        reuse_still=not args.no_reuse_still,
        bystander_every=args.bystander_every,
        rescue=_none_or(args.rescue),
    )
    analyze(opts)
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from edge.evaluate import evaluate, format_report

    labels, clips = Path(args.labels), Path(args.clips)
    if not labels.is_file():
        raise ValueError(f"labels file {labels} not found")
    if not clips.is_dir():
        raise ValueError(f"clips folder {clips} not found")
    report = evaluate(
        labels,
        clips,
        poses_dir=Path(args.poses_dir) if args.poses_dir else None,
        fps=args.fps,
        model=args.model,
        refine=_none_or(args.refine),
        rescue=_none_or(args.rescue),
        threads=args.threads,
        progress=not args.quiet,
        phases=args.phases,
    )
    print(format_report(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(report.to_json() + "\n", encoding="utf-8")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    import json

    from edge.events import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from edge.agent import main_run

    return main_run(Path(args.config))


def _bystander_every(text: str) -> int:
    """The agent config's range (`AgentConfig.bystander_every`), so both accept the same."""
    value = int(text)
    if not 1 <= value <= 10:
        raise argparse.ArgumentTypeError(f"must be 1 to 10, not {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _none_or(key: str) -> str | None:
    """A model option's value; '' or 'none' turns that model off."""
    return None if key in ("", "none") else key


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default="movenet_multipose",
        help="pose model key from models/manifest.yaml (default: movenet_multipose)",
    )
    p.add_argument(
        "--refine",
        default="movenet_lightning",
        help="with a MultiPose --model: the single-person model that follows each person "
        "between keyframes; 'none' runs --model on every frame. A single-person --model "
        "(e.g. movenet_thunder) follows people itself between YOLOX keyframes, or with "
        "'none' runs YOLOX + that model on every frame (default: movenet_lightning)",
    )
    p.add_argument(
        "--rescue",
        default="yolox_nano",
        help="with a MultiPose --model and --refine: the person detector that looks on "
        "keyframes where MultiPose finds nobody and nobody is followed; 'none' turns it off "
        "(default: yolox_nano)",
    )
    p.add_argument("--fps", type=float, default=10.0, help="analysis rate (default 10)")
    p.add_argument("--threads", type=int, default=1, help="inference threads (default 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liftwatch-edge",
        description="liftwatch edge agent: pose analysis of floor-level lifts, on the camera side.",
    )
    parser.add_argument("--version", action="version", version=f"liftwatch {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the supported models and verify their sha256")
    p.add_argument(
        "--dir", help="look only in this folder (default: $LIFTWATCH_MODEL_DIR, ./models)"
    )
    p.add_argument(
        "--require",
        nargs="+",
        metavar="KEY",
        help="fail unless these models are present and intact",
    )
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("analyze", help="analyse a clip or camera: poses (+ overlay video)")
    p.add_argument("clip", help="video file, rtsp:// or http:// URL, or device (0, /dev/video0)")
    p.add_argument("--out", required=True, help="POSES.jsonl: one JSON line per analysed frame")
    p.add_argument("--render", metavar="OVERLAY.mp4", help="also write a skeleton overlay video")
    p.add_argument(
        "--no-silhouette",
        action="store_true",
        help="judge posture from keypoints only (skips the back-contour model at lift bottoms)",
    )
    p.add_argument(
        "--no-reuse-still",
        action="store_true",
        help="pose every followed person on every frame, even one whose crop did not change",
    )
    p.add_argument(
        "--bystander-every",
        type=_bystander_every,
        default=3,
        metavar="N",
        help="with several people in view, pose bystanders (not in a lift, not the nearest "
        "person) on every N-th frame only (default 3; 1 poses everyone on every frame)",
    )
    _add_model_options(p)
    p.set_defaults(func=_cmd_analyze)

    p = sub.add_parser("eval", help="score lift detection and posture against labelled clips")
    p.add_argument(
        "--labels", required=True, help="LABELS.csv (clip, lifts_min, lifts_max, back, view…)"
    )
    p.add_argument("--clips", required=True, help="folder holding the clips named in LABELS.csv")
    p.add_argument(
        "--poses-dir", help="use cached <clip>.jsonl from `analyze` (no images: no silhouette)"
    )
    p.add_argument(
        "--phases",
        type=_positive_int,
        default=1,
        metavar="N",
        help="run each clip N times, the analysis grid shifted by 1/N of a period each time; "
        "figures pool the runs and the clips whose labels move are listed (default 1)",
    )
    p.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    _add_model_options(p)
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("run", help="run the agent for one camera: lifts to MQTT, never losing one")
    p.add_argument("--config", required=True, help="CAMERA.yaml (see examples/camera.yaml)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("schema", help="print the JSON Schema of the MQTT messages")
    p.set_defaults(func=_cmd_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from edge.models import ModelError
    from edge.source import SourceError

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except (SourceError, ModelError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `liftwatch-edge schema | head`: the reader left, not an error
        sys.stderr.close()
        return 0


BATCH_COMMANDS = frozenset({"analyze", "eval"})


def entry() -> None:
    """The console script: `main`, then for batch commands an exit without interpreter teardown.

    Finalising ONNX Runtime, OpenCV and numpy takes 0.1-0.15 s, a tenth of analysing a
    five-second clip, and by then a batch command has closed every file it wrote. Long-running
    commands (``run``) exit normally, so their threads finish what they were doing.
    """
    argv = sys.argv[1:]
    code = main(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command in BATCH_COMMANDS:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
