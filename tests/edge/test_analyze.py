"""`liftwatch-edge analyze` end to end on a real clip, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from edge.cli import main

CLIP = "deadlift-side-nico_blocked.mp4"  # 600x600, 30 fps, 4.7 s, one lifter


@pytest.fixture(scope="module")
def analysed(clips_dir: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("analyze")
    code = main(
        [
            "analyze",
            str(clips_dir / CLIP),
            "--out",
            str(out / "poses.jsonl"),
            "--render",
            str(out / "overlay.mp4"),
            "-q",
        ]
    )
    assert code == 0
    return out


def test_one_json_line_per_analysed_frame_with_tracked_persons(analysed: Path) -> None:
    lines = [json.loads(x) for x in (analysed / "poses.jsonl").read_text().splitlines()]
    frames = [x for x in lines if "persons" in x]
    assert 40 <= len(frames) <= 50  # 4.7 s at 10 fps
    times = [f["t"] for f in frames]
    assert times == sorted(times) and times[-1] - times[0] > 4.0
    person = frames[0]["persons"][0]
    assert len(person["keypoints"]) == 17 and all(len(k) == 3 for k in person["keypoints"])
    assert len(person["box"]) == 4 and person["track_id"] >= 1
    ids = {p["track_id"] for f in frames for p in f["persons"]}
    assert len(ids) == 1, f"the lifter should keep one track id, got {ids}"


def test_the_lift_is_reported_after_the_frame_it_ended_at(analysed: Path) -> None:
    lines = [json.loads(x) for x in (analysed / "poses.jsonl").read_text().splitlines()]
    lifts = [(i, x["lift"]) for i, x in enumerate(lines) if "lift" in x]
    assert len(lifts) == 1, "the clip holds one labelled floor-level lift"
    i, lift = lifts[0]
    assert lift["start"] <= lift["bottom"] < lift["end"]
    assert lift["posture"] in ("hinge", "rounded", "unscorable")
    assert 0.0 <= lift["confidence"] <= 1.0 and lift["view"] in ("side", "oblique", "front")
    assert lines[i - 1]["t"] >= lift["end"] - 1e-3


def test_overlay_video_has_a_frame_per_analysed_frame(analysed: Path) -> None:
    cap = cv2.VideoCapture(str(analysed / "overlay.mp4"))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, image = cap.read()
    cap.release()
    assert ok and image.shape[:2] == (600, 600)
    frames = sum(1 for x in (analysed / "poses.jsonl").read_text().splitlines() if "persons" in x)
    assert count == frames


def test_missing_clip_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.mp4"
    assert main(["analyze", str(missing), "--out", str(tmp_path / "x.jsonl"), "-q"]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "no such file" in err


def test_unknown_model_is_a_clear_error(
    clips_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["analyze", str(clips_dir / CLIP), "--out", str(tmp_path / "x.jsonl"), "-q"]
    assert main([*args, "--model", "no_such_model"]) == 2
    assert "unknown model 'no_such_model'" in capsys.readouterr().err
