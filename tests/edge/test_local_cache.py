"""Start-up records kept between runs: written atomically, and anything odd reads as empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge import local_cache


def test_a_record_reads_back_and_leaves_no_staging_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(local_cache.CACHE_ENV, str(tmp_path / "cache"))
    assert local_cache.read_record("r.json") == {}
    local_cache.write_record("r.json", {"a": [1, 2], "b": {"c": "d"}})
    assert local_cache.read_record("r.json") == {"a": [1, 2], "b": {"c": "d"}}
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["r.json"]


@pytest.mark.parametrize("content", [b"", b"{half", b"[1, 2]", b"\xff\xfe"])
def test_a_broken_or_foreign_record_reads_as_empty(
    content: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(local_cache.CACHE_ENV, str(tmp_path))
    (tmp_path / "r.json").write_bytes(content)
    assert local_cache.read_record("r.json") == {}


def test_an_unwritable_or_disabled_cache_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(local_cache.CACHE_ENV, str(blocker))
    local_cache.write_record("r.json", {"a": 1})  # no exception
    assert local_cache.read_record("r.json") == {}
    monkeypatch.setenv(local_cache.CACHE_ENV, "")
    assert local_cache.cache_dir() is None
    local_cache.write_record("r.json", {"a": 1})
    assert local_cache.read_record("r.json") == {}
