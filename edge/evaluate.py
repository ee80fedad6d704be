"""`liftwatch-edge eval`: lift detection and posture against a labelled folder of clips.

Reads the labels format of the development clips (``clip, lifts_min, lifts_max, back, view``
…), runs the real pipeline on every clip (or reads cached POSES.jsonl files), and scores:

- detection per clip with d lifts found: true = min(d, lifts_max), false = max(0, d − lifts_max),
  missed = max(0, lifts_min − d); precision and recall over all clips;
- posture: every lift found in a clip is scored against the clip's ``back`` label (neutral ≙
  hinge, rounded ≙ rounded, unknown is left out). Balanced accuracy, sensitivity (rounded)
  and specificity (neutral) are over the lifts the judge *scored*; abstain rate is
  unscorable / all labelled lifts, so a judge cannot buy accuracy silently by abstaining;
- the baseline "trunk flexion > 60° (REBA trunk band 4) means risky" on the same scored
  lifts, side by side.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from edge.analysis import LiftAnalyzer, SamplerConfig
from edge.lifts import LiftConfig
from edge.pose.base import Image
from edge.poses import Poses
from edge.posture import DEFAULT_CONFIG, Posture, PostureConfig
from edge.series import Lift
from edge.silhouette import BackContour

Frames = Iterable[tuple[float, Poses, Image | None]]
"""(t, tracked poses, the frame image or None when only poses were kept)."""
Transform = Callable[[Image], Image]
"""A change made to every decoded image before analysis (a mirrored or smaller camera)."""

BASELINE_FLEXION_DEG = 60.0
SCORED_BACKS = ("neutral", "rounded")
BACKS = (*SCORED_BACKS, "unknown")
LABEL_COLUMNS = ("clip", "lifts_min", "lifts_max", "back", "view")
VIEWS = ("side", "oblique", "front")
UNJUDGED_VIEW = "front"
"""Labelled view left out of the headline posture figures (see `score`)."""


@dataclass(frozen=True, slots=True)
class ClipLabel:
    clip: str
    lifts_min: int
    lifts_max: int
    back: str
    view: str


def read_labels(path: Path) -> list[ClipLabel]:
    """The rows of a labels.csv, checked, so a typo cannot quietly drop clips from a figure.

    Extra columns are ignored so richer files still load. Spreadsheet habits are accepted:
    a byte-order mark, ``;`` or tab between fields (the header line tells which), header
    names in another case or padded with spaces, blank rows.
    A ``back`` outside neutral|rounded|unknown, lift counts that are not 0 ≤ min ≤ max, a
    missing column or a clip listed twice is an error naming the line.
    """
    with path.open(newline="", encoding="utf-8-sig") as f:
        header = f.readline()
        f.seek(0)
        reader = csv.DictReader(f, delimiter=max(",;\t", key=header.count))
        found = [(name or "").strip().lower() for name in reader.fieldnames or []]
        missing = [c for c in LABEL_COLUMNS if c not in found]
        if missing:
            raise ValueError(
                f"{path}: labels need the columns {', '.join(LABEL_COLUMNS)}; missing "
                f"{', '.join(missing)} (found: {', '.join(n for n in found if n) or 'none'})"
            )
        reader.fieldnames = found
        labels: list[ClipLabel] = []
        seen: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            label = _label_row(row, f"{path}:{line}")
            if label.clip in seen:
                raise ValueError(
                    f"{path}:{line}: {label.clip} is listed twice (first on line "
                    f"{seen[label.clip]}): its lifts would count twice"
                )
            seen[label.clip] = line
            labels.append(label)
    return labels


def _label_row(row: dict[str, Any], where: str) -> ClipLabel:
    values = {c: (row.get(c) or "").strip() for c in LABEL_COLUMNS}
    if not values["clip"]:
        raise ValueError(f"{where}: bad labels row (no clip name)")
    try:
        lo, hi = int(values["lifts_min"]), int(values["lifts_max"])
    except ValueError:
        raise ValueError(
            f"{where}: bad labels row (lifts_min {values['lifts_min']!r} and lifts_max "
            f"{values['lifts_max']!r} must be whole numbers)"
        ) from None
    if not 0 <= lo <= hi:
        raise ValueError(
            f"{where}: bad labels row (need 0 <= lifts_min <= lifts_max, got {lo}, {hi})"
        )
    back = values["back"].lower()
    if back not in BACKS:
        raise ValueError(
            f"{where}: bad labels row (back {values['back']!r} is not one of {', '.join(BACKS)})"
        )
    return ClipLabel(values["clip"], lo, hi, back, values["view"].lower() or "unknown")


def lifts_with_postures(
    frames: Frames,
    lift_config: LiftConfig | None = None,
    posture_config: PostureConfig = DEFAULT_CONFIG,
    contour: BackContour | None = None,
    sampler_config: SamplerConfig | None = None,
) -> list[tuple[Lift, Posture]]:
    """`LiftAnalyzer` over one stream: the same code path as the live agent."""
    analyzer = LiftAnalyzer(lift_config, posture_config, contour, sampler_config)
    judged = []
    for t, poses, image in frames:
        judged.extend(analyzer.update(t, poses, image))
    judged.extend(analyzer.flush())
    return [(j.lift, j.posture) for j in judged]


def poses_from_jsonl(path: Path) -> Iterator[tuple[float, Poses, None]]:
    """Frames of a POSES.jsonl written by ``liftwatch-edge analyze`` (no images)."""
    with path.open(encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line) if line.strip() else {}
            if "persons" in rec:  # lift lines are skipped: lifts are found again here
                yield float(rec["t"]), Poses.from_records(rec["persons"]), None


def judged_from_clip(
    path: Path,
    analyzer: LiftAnalyzer,
    fps: float = 10.0,
    model: str = "movenet_multipose",
    refine: str | None = "movenet_lightning",
    threads: int = 1,
    offset_s: float = 0.0,
    transform: Transform | None = None,
    rescue: str | None = "yolox_nano",
) -> list[tuple[Lift, Posture]]:
    """A video through the real pipeline, exactly as ``analyze`` and the agent run it
    (``offset_s``: the analysis grid starts that far in, see `edge.source.RateGate`;
    ``transform``: applied to every analysed image first)."""
    from edge.frames import Frame
    from edge.pipeline import PosePipeline
    from edge.pose import create_estimator
    from edge.source import open_source

    pipeline = PosePipeline(
        create_estimator(model, threads=threads, refine=refine, rescue=rescue), analyzer=analyzer
    )
    judged = []
    with open_source(str(path), fps, prefetch=True, offset_s=offset_s) as source:
        frames: Iterable[Frame] = source
        if transform is not None:
            frames = (replace(f, image=transform(f.image)) for f in source)
        for item in pipeline.run(frames):
            judged.extend(item.lifts)
    judged.extend(pipeline.finish())
    return [(j.lift, j.posture) for j in judged]


@dataclass(frozen=True, slots=True)
class LiftResult:
    start: float
    bottom: float
    end: float
    label: str
    confidence: float
    reason: str | None
    view: str
    trunk_flexion_max_deg: float | None
    neck_drop: float | None
    back_curvature: float | None = None
    features: dict[str, float | None] = field(default_factory=dict)
    """Every feature the judge reported (`Posture.features`), so the JSON shows why a lift
    was called as it was or abstained: outline error, estimated flexion, view width."""


@dataclass(frozen=True, slots=True)
class ClipResult:
    label: ClipLabel
    lifts: list[LiftResult]
    error: str | None = None
    phase: int = 0
    """Which sampling phase of the clip this is (`evaluate`'s ``phases``)."""

    @property
    def lift_labels(self) -> list[str]:
        """Each lift's label in order, or ``["error"]`` when the clip could not be read."""
        return ["error"] if self.error else [lift.label for lift in self.lifts]

    @property
    def detected(self) -> int:
        return len(self.lifts)

    @property
    def true(self) -> int:
        return min(self.detected, self.label.lifts_max)

    @property
    def false(self) -> int:
        return max(0, self.detected - self.label.lifts_max)

    @property
    def missed(self) -> int:
        return max(0, self.label.lifts_min - self.detected)


@dataclass(slots=True)
class Confusion:
    """Rounded is the positive class; abstentions are counted apart from the matrix."""

    tp: int = 0
    fn: int = 0
    tn: int = 0
    fp: int = 0
    abstained: int = 0

    def add(self, truth_rounded: bool, predicted: str) -> None:
        if predicted == "unscorable":
            self.abstained += 1
        elif truth_rounded:
            self.tp += predicted == "rounded"
            self.fn += predicted != "rounded"
        else:
            self.fp += predicted == "rounded"
            self.tn += predicted != "rounded"

    @property
    def scored(self) -> int:
        return self.tp + self.fn + self.tn + self.fp

    @property
    def sensitivity(self) -> float | None:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def specificity(self) -> float | None:
        return _ratio(self.tn, self.tn + self.fp)

    @property
    def balanced_accuracy(self) -> float | None:
        se, sp = self.sensitivity, self.specificity
        return None if se is None or sp is None else (se + sp) / 2

    @property
    def abstain_rate(self) -> float | None:
        return _ratio(self.abstained, self.scored + self.abstained)

    def to_dict(self) -> dict[str, Any]:
        return {
            "balanced_accuracy": _round(self.balanced_accuracy),
            "sensitivity": _round(self.sensitivity),
            "specificity": _round(self.specificity),
            "abstain_rate": _round(self.abstain_rate),
            "lifts": self.scored + self.abstained,
            "scored": self.scored,
            "confusion": {"tp": self.tp, "fn": self.fn, "tn": self.tn, "fp": self.fp},
        }


@dataclass(slots=True)
class EvalReport:
    clips: list[ClipResult]
    posture: Confusion = field(default_factory=Confusion)
    baseline: Confusion = field(default_factory=Confusion)
    posture_by_view: dict[str, Confusion] = field(default_factory=dict)
    baseline_by_view: dict[str, Confusion] = field(default_factory=dict)

    @property
    def phases(self) -> int:
        """How many sampling phases each clip ran at (`evaluate`'s ``phases``)."""
        return 1 + max((c.phase for c in self.clips), default=0)

    def by_phase(self) -> list[EvalReport]:
        """The same figures for each sampling phase alone (one report when ``phases`` is 1)."""
        if self.phases == 1:
            return [self]
        return [score([c for c in self.clips if c.phase == k]) for k in range(self.phases)]

    def unstable(self) -> dict[str, list[list[str]]]:
        """Clips whose lifts' labels differ between phases: clip → labels per phase."""
        per_clip: dict[str, list[list[str]]] = {}
        for c in self.clips:
            per_clip.setdefault(c.label.clip, []).append(c.lift_labels)
        return {
            clip: labels
            for clip, labels in per_clip.items()
            if any(other != labels[0] for other in labels[1:])
        }

    @property
    def precision(self) -> float | None:
        t = sum(c.true for c in self.clips if c.error is None)
        return _ratio(t, t + sum(c.false for c in self.clips if c.error is None))

    @property
    def recall(self) -> float | None:
        t = sum(c.true for c in self.clips if c.error is None)
        return _ratio(t, t + sum(c.missed for c in self.clips if c.error is None))

    def to_json(self) -> str:
        """Nested JSON: ``detection.precision`` is ``{"detection": {"precision": …}}``."""
        ok = [c for c in self.clips if c.error is None]
        doc = {
            "detection": {
                "precision": _round(self.precision),
                "recall": _round(self.recall),
                "true": sum(c.true for c in ok),
                "false": sum(c.false for c in ok),
                "missed": sum(c.missed for c in ok),
            },
            "posture": self.posture.to_dict()
            | {
                "views": f"all but {UNJUDGED_VIEW}",
                "by_view": {v: c.to_dict() for v, c in self.posture_by_view.items()},
            },
            "baseline": self.baseline.to_dict()
            | {
                "rule": f"trunk flexion > {BASELINE_FLEXION_DEG:g} deg means rounded",
                "by_view": {v: c.to_dict() for v, c in self.baseline_by_view.items()},
            },
            "phases": self.phases,
            "clips": [
                asdict(c.label)
                | {
                    "phase": c.phase,
                    "detected": c.detected,
                    "error": c.error,
                    "lifts": [asdict(lift) for lift in c.lifts],
                }
                for c in self.clips
            ],
        }
        if self.phases > 1:
            doc["by_phase"] = [
                {
                    "phase": k,
                    "detection": {"precision": _round(r.precision), "recall": _round(r.recall)},
                    "posture": r.posture.to_dict(),
                    "baseline": r.baseline.to_dict(),
                }
                for k, r in enumerate(self.by_phase())
            ]
            doc["unstable"] = self.unstable()
        return json.dumps(doc, indent=2)


def score(clips: Sequence[ClipResult]) -> EvalReport:
    """Posture and baseline confusion over every lift of the clips labelled neutral/rounded
    (a clip run at several phases counts every run: the figures are their average).

    The headline figures pool every view but ``front``: a camera facing the lifter sees the
    spine bend edge-on, so there the judge must abstain (`by_view` shows that it does), and
    counting those abstentions in the headline would hide how often it abstains where the
    back *can* be seen. Per view, every labelled view is reported.
    """
    report = EvalReport(list(clips))
    for clip in clips:
        if clip.error is not None or clip.label.back not in SCORED_BACKS:
            continue
        truth = clip.label.back == "rounded"
        view = clip.label.view
        for lift in clip.lifts:
            base = _baseline(lift)
            report.posture_by_view.setdefault(view, Confusion()).add(truth, lift.label)
            report.baseline_by_view.setdefault(view, Confusion()).add(truth, base)
            if view != UNJUDGED_VIEW:
                report.posture.add(truth, lift.label)
                report.baseline.add(truth, base)
    return report


def _baseline(lift: LiftResult) -> str:
    """The REBA-band rule on the same lifts the judge scored (its abstentions stay out)."""
    if lift.label == "unscorable" or lift.trunk_flexion_max_deg is None:
        return "unscorable"
    return "rounded" if lift.trunk_flexion_max_deg > BASELINE_FLEXION_DEG else "hinge"


def evaluate(
    labels_csv: Path,
    clips_dir: Path,
    *,
    poses_dir: Path | None = None,
    fps: float = 10.0,
    model: str = "movenet_multipose",
    refine: str | None = "movenet_lightning",
    rescue: str | None = "yolox_nano",
    threads: int = 1,
    lift_config: LiftConfig | None = None,
    posture_config: PostureConfig = DEFAULT_CONFIG,
    silhouette: bool = True,
    sampler_config: SamplerConfig | None = None,
    progress: bool = True,
    phases: int = 1,
    transform: Transform | None = None,
) -> EvalReport:
    """Run every labelled clip (cached poses when ``poses_dir`` has them) and score it.

    Clips run through the real pipeline also measure the back's silhouette (unless
    ``silhouette`` is off); cached poses have no images, so they are judged on keypoints.
    A clip that cannot be read is reported with its error and left out of the figures
    rather than ending the run.

    With ``phases`` N > 1 every clip runs N times, the 10 fps grid shifted by k/N of its
    period each time (0, 33 and 67 ms for 3), so each run analyses other frames of the
    same video, as cameras whose clocks fall differently would. A label that holds at
    one phase only was luck; the figures count every run, and `EvalReport.unstable` names
    the clips whose labels moved.

    ``transform`` changes every decoded image before analysis (`bench/eval_views.py` runs
    mirrored, smaller, tilted, darker and more compressed copies of the clips this way,
    none of them written to disk); cached poses cannot be transformed.
    """
    if phases < 1:
        raise ValueError(f"phases must be 1 or more, got {phases}")
    if transform is not None and poses_dir is not None:
        raise ValueError("cached poses (--poses-dir) have no images to transform")
    if phases > 1 and poses_dir is not None:
        raise ValueError(
            "cached poses (--poses-dir) hold one phase only: run on the clips themselves "
            "to sample them at several phases"
        )
    results = []
    labels = read_labels(labels_csv)
    contour: BackContour | None = None
    runs = [(label, k) for label in labels for k in range(phases)]
    for i, (label, k) in enumerate(runs, start=1):
        if progress:
            at = f" (phase {k + 1}/{phases})" if phases > 1 else ""
            print(f"[{i}/{len(runs)}] {label.clip}{at}", file=sys.stderr)
        cached = _cached_poses(poses_dir, label.clip)
        try:
            if cached is not None:
                pairs = lifts_with_postures(
                    poses_from_jsonl(cached), lift_config, posture_config, None, sampler_config
                )
            else:
                path = clips_dir / label.clip
                if not path.is_file():
                    raise FileNotFoundError(f"no clip {path}")
                if silhouette and contour is None:
                    contour = BackContour(threads)
                analyzer = LiftAnalyzer(lift_config, posture_config, contour, sampler_config)
                offset = k / (phases * fps)
                pairs = judged_from_clip(
                    path, analyzer, fps, model, refine, threads, offset, transform, rescue
                )
        except Exception as exc:  # one broken clip must not hide the others' figures
            error = f"{type(exc).__name__}: {exc}"
            results.append(ClipResult(label, [], error=error, phase=k))
            continue
        results.append(ClipResult(label, [_lift_result(lift, p) for lift, p in pairs], phase=k))
    return score(results)


def _cached_poses(poses_dir: Path | None, clip: str) -> Path | None:
    if poses_dir is None:
        return None
    for name in (f"{Path(clip).stem}.jsonl", f"{clip}.jsonl"):
        if (poses_dir / name).is_file():
            return poses_dir / name
    return None


def _lift_result(lift: Lift, p: Posture) -> LiftResult:
    return LiftResult(
        start=round(lift.start, 3),
        bottom=round(lift.bottom, 3),
        end=round(lift.end, 3),
        label=p.label,
        confidence=p.confidence,
        reason=p.reason,
        view=p.view,
        trunk_flexion_max_deg=p.features.get("trunk_flexion_max_deg"),
        neck_drop=p.features.get("neck_drop"),
        back_curvature=p.features.get("back_curvature"),
        features=dict(p.features),
    )


def format_report(report: EvalReport) -> str:
    """Plain-text report: per clip, then detection, then posture vs baseline by view."""
    lines = [
        f"{'clip':34s} {'back':8s} {'view':8s} {'lifts':>5s} {'want':>5s}  postures",
    ]
    for c in report.clips:
        want = f"{c.label.lifts_min}" + (
            f"-{c.label.lifts_max}" if c.label.lifts_max != c.label.lifts_min else ""
        )
        name = c.label.clip + (f" @{c.phase + 1}" if report.phases > 1 else "")
        if c.error:
            lines.append(f"{name:34s} {c.label.back:8s} {c.label.view:8s} ERROR {c.error}")
            continue
        postures = ", ".join(_describe(lift) for lift in c.lifts) or "-"
        lines.append(
            f"{name:34s} {c.label.back:8s} {c.label.view:8s} {c.detected:5d} {want:>5s}  {postures}"
        )
    lines += [
        "",
        f"detection: precision {_fmt(report.precision)}  recall {_fmt(report.recall)}",
        "",
        "posture vs clip labels (neutral = hinge; unknown excluded). Balanced accuracy,",
        "sensitivity (rounded) and specificity (neutral) are over scored lifts; abstain =",
        f"unscorable / all labelled lifts. Baseline: trunk flexion > {BASELINE_FLEXION_DEG:g}°"
        " means rounded,",
        f"on the same scored lifts. `pooled` (the headline figures) is every view but"
        f" {UNJUDGED_VIEW}:",
        "facing the camera the back is seen edge-on, and there the judge must abstain.",
        f"{'view':8s} {'lifts':>5s} {'scored':>6s} {'BA':>5s} {'sens':>5s} {'spec':>5s} "
        f"{'abst':>5s}  {'TP/FN/TN/FP':12s} | {'base BA':>7s} {'sens':>5s} {'spec':>5s}",
    ]
    seen = report.posture_by_view
    views = [v for v in VIEWS if v in seen] + sorted(set(seen) - set(VIEWS))
    rows = [(v, report.posture_by_view[v], report.baseline_by_view[v]) for v in views]
    rows.append(("pooled", report.posture, report.baseline))
    for view, p, b in rows:
        cm = f"{p.tp}/{p.fn}/{p.tn}/{p.fp}"
        lines.append(
            f"{view:8s} {p.scored + p.abstained:5d} {p.scored:6d} {_fmt(p.balanced_accuracy):>5s} "
            f"{_fmt(p.sensitivity):>5s} {_fmt(p.specificity):>5s} {_fmt(p.abstain_rate):>5s}  "
            f"{cm:12s} | {_fmt(b.balanced_accuracy):>7s} {_fmt(b.sensitivity):>5s} "
            f"{_fmt(b.specificity):>5s}"
        )
    if report.phases > 1:
        lines += _phase_lines(report)
    return "\n".join(lines)


def _phase_lines(report: EvalReport) -> list[str]:
    """Each phase's headline figures and the clips whose labels moved between phases."""
    lines = [
        "",
        f"by phase (figures above pool all {report.phases}; @k = grid shifted by "
        f"(k-1)/{report.phases} of a period):",
        f"{'phase':8s} {'prec':>5s} {'rec':>5s} {'BA':>5s} {'sens':>5s} {'spec':>5s} "
        f"{'abst':>5s} | {'base BA':>7s}",
    ]
    for k, r in enumerate(report.by_phase(), start=1):
        p = r.posture
        lines.append(
            f"@{k:<7d} {_fmt(r.precision):>5s} {_fmt(r.recall):>5s} "
            f"{_fmt(p.balanced_accuracy):>5s} {_fmt(p.sensitivity):>5s} "
            f"{_fmt(p.specificity):>5s} {_fmt(p.abstain_rate):>5s} | "
            f"{_fmt(r.baseline.balanced_accuracy):>7s}"
        )
    unstable = report.unstable()
    lines.append(f"labels that change with the phase: {len(unstable)} clip(s)")
    for clip, labels in unstable.items():
        runs = " | ".join(", ".join(lab) or "-" for lab in labels)
        lines.append(f"  {clip}: {runs}")
    return lines


def _describe(lift: LiftResult) -> str:
    if lift.label == "unscorable":
        return f"unscorable ({lift.reason})"
    return f"{lift.label} {lift.confidence:.2f} [{lift.view}]"


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"
