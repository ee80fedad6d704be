"""`liftwatch-edge analyze` end to end on a real clip, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from edge.cli import main

CLIP = "deadlift-side-nico_blocked.mp4"  # 600x600, 30 fps, 4.7 s, one lifter
ENTRY = (sys.executable, "-c", "from edge.cli import entry; entry()")


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


@pytest.mark.clips
@pytest.mark.models
def test_bystander_every_reaches_the_pose_stage(clips_dir: Path, tmp_path: Path) -> None:
    """deadlift-bad-000008: a lifter and one person behind them. With ``--bystander-every 1``
    the one behind is posed on every frame, by default on every third: the same people in
    every frame, and on some frames that person's keypoints differ."""
    runs = {}
    for every in ("1", "3"):
        out = tmp_path / f"every{every}.jsonl"
        args = ["analyze", str(clips_dir / "deadlift-bad-000008.mp4"), "--out", str(out), "-q"]
        assert main([*args, "--bystander-every", every]) == 0
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        runs[every] = [line["persons"] for line in lines if "persons" in line]
    assert [len(p) for p in runs["1"]] == [len(p) for p in runs["3"]]
    assert max(len(p) for p in runs["1"]) == 2
    assert runs["1"] != runs["3"]


def _monochrome_copy(clip: Path, out: Path, seconds: float) -> Path:
    """The clip's first ``seconds`` as a night camera in monochrome would record them."""
    cap = cv2.VideoCapture(str(clip))
    fps = cap.get(cv2.CAP_PROP_FPS)
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), fps, (w, h))
    for _ in range(int(seconds * fps)):
        ok, frame = cap.read()
        assert ok
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        writer.write(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    writer.release()
    cap.release()
    return out


@pytest.mark.clips
@pytest.mark.models
def test_rescue_reaches_the_pose_stage(clips_dir: Path, tmp_path: Path) -> None:
    """deadlift-good-000009 in monochrome starts with the lifter folded over the bar, where
    MultiPose sees nobody: the rescue detector finds him, ``--rescue none`` does not."""
    clip = _monochrome_copy(clips_dir / "deadlift-good-000009.mp4", tmp_path / "n.mp4", 1.0)
    found = {}
    for rescue in ("yolox_nano", "none"):
        out = tmp_path / f"{rescue}.jsonl"
        assert main(["analyze", str(clip), "--out", str(out), "-q", "--rescue", rescue]) == 0
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        found[rescue] = [len(line["persons"]) for line in lines if "persons" in line]
    assert found["none"] == [0] * 10
    assert found["yolox_nano"] == [1] * 10


@pytest.mark.parametrize("every", ["0", "11"])
def test_bystander_every_takes_the_agent_configs_range(tmp_path: Path, every: str) -> None:
    with pytest.raises(SystemExit):
        main(["analyze", "x.mp4", "--out", str(tmp_path / "x.jsonl"), "--bystander-every", every])


def test_the_console_script_exits_early_with_its_outputs_complete(
    analysed: Path, clips_dir: Path, tmp_path: Path
) -> None:
    """The console entry skips interpreter teardown after a batch command: nothing is lost."""
    out = tmp_path / "poses.jsonl"
    run = subprocess.run(
        [*ENTRY, "analyze", str(clips_dir / CLIP), "--out", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "frames in" in run.stderr
    assert _comparable(out) == _comparable(analysed / "poses.jsonl")


def _comparable(path: Path) -> list[object]:
    """The records less what differs between runs: the wall clock, and track ids, which
    count on across every tracker in a process."""

    def strip(value: object) -> object:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("wall", "track_id")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return [strip(json.loads(x)) for x in path.read_text().splitlines()]


def test_the_console_script_keeps_error_exit_codes(tmp_path: Path) -> None:
    run = subprocess.run(
        [*ENTRY, "analyze", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "p.jsonl")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "nope.mp4: no such file" in run.stderr
