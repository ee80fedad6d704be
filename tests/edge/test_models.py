from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge import models
from edge.cli import main
from edge.models import (
    MANIFEST_PATH,
    ModelError,
    ModelSpec,
    ModelStatus,
    check,
    load_manifest,
    resolve,
)

_real_sha256 = models.sha256_of


def test_manifest_lists_the_supported_models_with_provenance() -> None:
    manifest = load_manifest()
    assert {"movenet_multipose", "movenet_thunder", "movenet_lightning", "yolox_nano"} <= set(
        manifest
    )
    for spec in manifest.values():
        assert len(spec.sha256) == 64
        assert spec.licence and spec.source and spec.file.endswith(".onnx")
        assert "AGPL" not in spec.licence


def test_real_weights_verify(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFTWATCH_MODEL_DIR", str(model_dir))
    spec, path = resolve("movenet_multipose")
    assert path == model_dir / spec.file


def test_missing_model_names_file_folder_and_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIFTWATCH_MODEL_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError) as err:
        resolve("movenet_multipose")
    msg = str(err.value)
    spec = load_manifest()["movenet_multipose"]
    assert spec.file in msg and str(tmp_path) in msg and spec.sha256 in msg


def test_corrupt_model_is_refused_with_both_hashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_manifest()["movenet_lightning"]
    (tmp_path / spec.file).write_bytes(b"not a model")
    monkeypatch.setenv("LIFTWATCH_MODEL_DIR", str(tmp_path))
    status = check(spec)
    assert not status.ok and status.path == tmp_path / spec.file
    assert "corrupt" in (status.problem or "") and spec.sha256 in (status.problem or "")
    with pytest.raises(ModelError, match="corrupt"):
        resolve("movenet_lightning")


def test_unknown_model_key_lists_the_known_ones() -> None:
    with pytest.raises(ModelError, match="movenet_multipose"):
        resolve("no_such_model")


def test_models_command_reports_and_exits_nonzero_on_corrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = load_manifest()["yolox_nano"]
    (tmp_path / spec.file).write_bytes(b"x")
    assert main(["models", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "CORRUPT" in out and spec.file in out and "MISSING" in out


def test_models_command_passes_on_real_weights(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "--dir", str(model_dir)]) == 0
    assert "CORRUPT" not in capsys.readouterr().out


def test_models_require_names_unknown_keys_and_fails_on_missing_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "--dir", str(tmp_path), "--require", "no_such"]) == 2
    assert "unknown model(s) no_such" in capsys.readouterr().err
    assert main(["models", "--dir", str(tmp_path), "--require", "movenet_lightning"]) == 1
    assert "required model(s) unavailable: movenet_lightning" in capsys.readouterr().err


def _spec_for(path: Path) -> ModelSpec:
    import hashlib

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    base = load_manifest()["movenet_lightning"]
    return ModelSpec(**{**vars(base), "file": path.name, "sha256": digest})


def test_a_verified_file_is_not_hashed_again_until_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIFTWATCH_CACHE_DIR", str(tmp_path / "cache"))
    weights = tmp_path / "w.onnx"
    weights.write_bytes(b"weights")
    spec = _spec_for(weights)
    hashed: list[Path] = []
    monkeypatch.setattr(models, "sha256_of", lambda p: hashed.append(p) or _real_sha256(p))

    def next_start() -> ModelStatus:
        monkeypatch.setattr(models, "_hashed", {})  # a new process
        return check(spec, [tmp_path])

    assert next_start().ok and len(hashed) == 1
    assert next_start().ok and len(hashed) == 1  # the record says this version matched
    assert check(spec, [tmp_path], recheck=True).ok and len(hashed) == 2  # `models` always hashes
    weights.write_bytes(b"weightz")  # same size, new content
    status = next_start()
    assert not status.ok and "corrupt" in (status.problem or "") and len(hashed) == 3
    assert not next_start().ok and len(hashed) == 4  # a mismatch is never taken from the record


def test_the_manifest_is_read_back_from_its_record_until_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIFTWATCH_CACHE_DIR", str(tmp_path / "cache"))
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(MANIFEST_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_manifest(manifest) == load_manifest()
    record = tmp_path / "cache" / models.MANIFEST_RECORD
    kept = json.loads(record.read_text())
    assert "yolox_nano" in kept["entries"]
    del kept["entries"]["yolox_nano"]  # proves the next read comes from the record
    record.write_text(json.dumps(kept))
    assert "yolox_nano" not in models._parse_manifest(manifest)
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text.replace("\nyolox_nano:", "\nyolox_renamed:"), encoding="utf-8")
    specs = load_manifest(manifest)  # a new version of the file: parsed again
    assert "yolox_renamed" in specs and "movenet_lightning" in specs
