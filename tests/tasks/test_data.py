"""Data resolution: local folders in order, checksums, stand-ins, download into the cache, offline failure."""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import time
from pathlib import Path

import pytest
from drip import dripping_server

from flextape_bench.errors import UserError
from flextape_bench.tasks import DATA_DIR_ENV, TaskIndex, TaskSpec, data, resolve_data_file, sha256_of
from flextape_bench.tasks.data import data_notes

from .conftest import DATA_DIR

EFF = "seesaw_cf_P19_P101_eff"
EFF_SHA = "f3d1d274dcf96fd08c937e4cccfc013ccfe3f8b075293ee163eeb16c39c2df89"


def with_url(spec: TaskSpec, url: str) -> TaskSpec:
    return dataclasses.replace(spec, dataset=dataclasses.replace(spec.dataset, url=url))


def copy_eff(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(DATA_DIR / f"{EFF}.json", folder))


def test_found_in_data_dir(index: TaskIndex, data_dir: Path, tmp_path: Path):
    path = resolve_data_file(index.spec(EFF), data_dir, tmp_path / "cache")
    assert path == data_dir / f"{EFF}.json" and sha256_of(path) == EFF_SHA
    assert not (tmp_path / "cache").exists()


def test_order_is_data_dir_then_env_then_cache(
    index: TaskIndex, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    cached = copy_eff(tmp_path / "cache" / "data")
    assert resolve_data_file(index.spec(EFF), None, tmp_path / "cache") == cached
    monkeypatch.setenv(DATA_DIR_ENV, str(data_dir))
    assert resolve_data_file(index.spec(EFF), None, tmp_path / "cache") == data_dir / f"{EFF}.json"
    mine = copy_eff(tmp_path / "mine")
    assert resolve_data_file(index.spec(EFF), tmp_path / "mine", tmp_path / "cache") == mine


def test_checksum_mismatch_names_file_and_both_hashes(index: TaskIndex, tmp_path: Path):
    damaged = copy_eff(tmp_path / "data")
    content = bytearray(damaged.read_bytes())
    content[100] ^= 1
    damaged.write_bytes(bytes(content))
    with pytest.raises(UserError) as caught:
        resolve_data_file(index.spec(EFF), tmp_path / "data", tmp_path / "cache")
    message = str(caught.value)
    assert str(damaged) in message and sha256_of(damaged) in message and EFF_SHA in message
    assert "delete it and download" in message


def test_offline_names_every_place_and_the_url(index: TaskIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "empty").mkdir()
    (tmp_path / "env").mkdir()
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    spec = with_url(index.spec(EFF), "http://127.0.0.1:9/seesaw.json")
    with pytest.raises(UserError) as caught:
        resolve_data_file(spec, tmp_path / "empty", tmp_path / "cache")
    message = str(caught.value)
    for place in (tmp_path / "empty", tmp_path / "env", tmp_path / "cache" / "data"):
        assert str(place / f"{EFF}.json") in message
    assert "http://127.0.0.1:9/seesaw.json" in message
    assert f"download it and put it in {tmp_path / 'cache' / 'data'} or pass --data-dir" in message
    assert list((tmp_path / "cache" / "data").iterdir()) == []  # no partial file left behind


def test_download_into_the_cache_then_reuse(index: TaskIndex, tmp_path: Path):
    source = copy_eff(tmp_path / "upstream")
    spec = with_url(index.spec(EFF), source.as_uri())
    path = resolve_data_file(spec, None, tmp_path / "cache")
    assert path == tmp_path / "cache" / "data" / f"{EFF}.json" and sha256_of(path) == EFF_SHA
    source.unlink()
    assert resolve_data_file(spec, None, tmp_path / "cache") == path


def test_a_download_gets_the_umask_permissions_and_leaves_no_temporary(index: TaskIndex, tmp_path: Path):
    spec = with_url(index.spec(EFF), copy_eff(tmp_path / "upstream").as_uri())
    old = os.umask(0o027)
    try:
        path = resolve_data_file(spec, None, tmp_path / "cache")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # 0666 less the umask, as open() gives; not mkstemp's 0600
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_download_with_wrong_checksum_is_refused(index: TaskIndex, tmp_path: Path):
    other = copy_eff(tmp_path / "upstream")
    other.write_text("[]")
    with pytest.raises(UserError, match=f"the download of {other.as_uri()} has sha256 .* expects {EFF_SHA}"):
        resolve_data_file(with_url(index.spec(EFF), other.as_uri()), None, tmp_path / "cache")
    assert list((tmp_path / "cache" / "data").iterdir()) == []


def test_a_download_past_the_size_bound_is_stopped_and_removed(
    index: TaskIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """An endpoint that sends without end fills no disk: past the bound (lowered here to a byte below the file's
    size) the download stops, and nothing is left in the cache; a file of exactly the bound is downloaded."""
    source = copy_eff(tmp_path / "upstream")
    monkeypatch.setattr(data, "MAX_DOWNLOAD_BYTES", source.stat().st_size - 1)
    with pytest.raises(UserError, match=f"the download of {source.as_uri()} passed {source.stat().st_size - 1} bytes"):
        resolve_data_file(with_url(index.spec(EFF), source.as_uri()), None, tmp_path / "cache")
    assert list((tmp_path / "cache" / "data").iterdir()) == []
    monkeypatch.setattr(data, "MAX_DOWNLOAD_BYTES", source.stat().st_size)  # the whole file, not a byte more
    assert sha256_of(resolve_data_file(with_url(index.spec(EFF), source.as_uri()), None, tmp_path / "cache")) == EFF_SHA


def test_a_download_past_the_time_bound_is_stopped_and_removed(
    index: TaskIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """An endpoint that sends a byte at a time, each well within the read timeout, holds no run: past the bound
    (lowered here to 1 s) the download stops, where it would take 100 s, and nothing is left in the cache."""
    monkeypatch.setattr(data, "DOWNLOAD_SECONDS", 1)
    with dripping_server() as server:
        url = f"{server}/{EFF}.json"
        started = time.monotonic()
        with pytest.raises(UserError, match=f"the download of {url} took more than 1 s"):
            resolve_data_file(with_url(index.spec(EFF), url), None, tmp_path / "cache")
        assert time.monotonic() - started < 10
    assert list((tmp_path / "cache" / "data").iterdir()) == []


def test_stand_in_is_used_and_noted(index: TaskIndex, data_dir: Path, tmp_path: Path):
    spec = index.spec("seesaw_cf_P101_P21")
    path = resolve_data_file(spec, data_dir, tmp_path / "cache")
    assert path == data_dir / "reconstructed" / "seesaw_cf_P101_P21.json"
    (note,) = data_notes(spec.dataset, path)
    assert note.startswith(f"the stand-in {path} is read in place of seesaw_cf_P101_P21.json (rebuilt from upstream")
    assert "without probe prompts" in note and note.endswith(f"download {spec.dataset.url} into {data_dir}")
    assert "checksum" not in note  # the stand-in's sha256 is in the spec (and was verified)


def test_a_file_without_checksum_is_noted(index: TaskIndex, data_dir: Path):
    spec = index.spec(EFF)
    path = data_dir / spec.dataset.file
    assert data_notes(spec.dataset, path) == []
    unchecked = dataclasses.replace(spec.dataset, sha256=None)
    assert data_notes(unchecked, path) == [
        f"{path} is not verified: its spec gives no sha256 (add the file's `sha256sum` to the spec)"
    ]


def test_data_dir_must_exist(index: TaskIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(UserError, match=r"--data-dir .*/nowhere is not a directory"):
        resolve_data_file(index.spec(EFF), tmp_path / "nowhere", tmp_path / "cache")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match=rf"\${DATA_DIR_ENV} .*/nowhere is not a directory"):
        resolve_data_file(index.spec(EFF), None, tmp_path / "cache")
