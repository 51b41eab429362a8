"""GeoNames' Swedish places are derived once and then read from a small cache file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.nlp import places


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path))
    places.swedish_localities.cache_clear()
    yield tmp_path
    places.swedish_localities.cache_clear()


def test_first_use_writes_the_swedish_places_and_later_uses_read_them(cache_dir: Path) -> None:
    derived = places.swedish_localities()
    cache = places.localities_cache()
    assert cache.parent == cache_dir and cache.is_file()
    assert {locality.name for locality in derived} >= {"Malmö", "Borlänge", "Kiruna"}
    places.swedish_localities.cache_clear()
    assert places.swedish_localities() == derived  # read back, field for field
    assert not list(cache_dir.glob("*.tmp"))


def test_a_damaged_cache_file_is_derived_again(cache_dir: Path) -> None:
    cache = places.localities_cache()
    cache.write_text('[["half a row"', encoding="utf-8")
    localities = places.swedish_localities()
    assert len(localities) > 1000
    places.swedish_localities.cache_clear()
    assert places.swedish_localities() == localities


def test_an_unwritable_cache_directory_costs_time_not_places(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory", encoding="utf-8")
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(blocked / "pipeline"))
    places.swedish_localities.cache_clear()
    try:
        assert len(places.swedish_localities()) > 1000
    finally:
        places.swedish_localities.cache_clear()


def test_a_process_without_a_home_directory_derives_the_places_each_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PIPELINE_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(places.Path, "home", staticmethod(no_home))
    places.swedish_localities.cache_clear()
    try:
        assert places.localities_cache() is None
        assert len(places.swedish_localities()) > 1000
    finally:
        places.swedish_localities.cache_clear()


def test_the_cache_lives_under_xdg_cache_home_when_that_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIPELINE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert places.localities_cache().parent == tmp_path / "pipeline"
