"""Find a task's data file locally (checking its sha256), or download it into the cache."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from flextape_bench.checksums import atomic_file, sha256_of
from flextape_bench.errors import UserError
from flextape_bench.tasks.spec import DatasetSpec, TaskSpec
from flextape_bench.transfers import ReplyTooLarge, ReplyTooSlow, bounded_blocks

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "FLEXTAPE_DATA_DIR"
DOWNLOAD_TIMEOUT_S = 30  # longest wait for any one read
DOWNLOAD_SECONDS = 1800  # longest a whole download may take (3.6 MB at 2 KB/s), so that no endpoint holds a run
MAX_DOWNLOAD_BYTES = 1 << 30  # a data file is a few MB (the largest Seesaw-CF file 3.6 MB); a download stops past this


def read_json(path: Path, where: str) -> Any:
    """The JSON value in `path`; UserError naming the file and `where` (the spec field that names it) when it
    cannot be read, is empty, is not UTF-8 or is not JSON (nesting too deep for the parser included)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror or exc}); check the path ({where})") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); re-download "
            f"the file ({where})"
        ) from exc
    if not text.strip():
        raise UserError(f"{path}: the file is empty; re-download it ({where})")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg}); re-download the file ({where})") from exc
    except RecursionError as exc:
        raise UserError(f"{path}: invalid JSON (nested too deeply to read); re-download the file ({where})") from exc


def _verified(path: Path, expected: str | None, url: str) -> Path:
    """`path`, after checking its sha256 against `expected` (when known)."""
    if expected is not None and (actual := sha256_of(path)) != expected:
        raise UserError(
            f"data file {path} has sha256 {actual}, but the task spec expects {expected}: it is damaged "
            f"or a different version; delete it and download {url} again, or, to use this version on "
            f"purpose, declare it in a task YAML of your own with `sha256: {actual}` "
            "(docs/tasks.md)"
        )
    return path


def _data_dirs(data_dir: Path | None, cache_dir: Path) -> list[Path]:
    """Where local copies are looked for, in order: `data_dir`, $FLEXTAPE_DATA_DIR, the cache."""
    dirs = []
    for where, folder in (("--data-dir", data_dir), (f"${DATA_DIR_ENV}", os.environ.get(DATA_DIR_ENV) or None)):
        if folder is None:
            continue
        if not Path(folder).is_dir():
            raise UserError(f"{where} {folder} is not a directory; point it at the folder holding the data files")
        dirs.append(Path(folder))
    return [*dirs, cache_dir / "data"]


def _download(url: str, target: Path, expected: str | None) -> None:
    """Download `url` into `target` atomically (checksums.atomic_file), after checking its sha256; stopped (and
    nothing kept) past MAX_DOWNLOAD_BYTES or DOWNLOAD_SECONDS (checked as each piece arrives: `read1`)."""
    with atomic_file(target) as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        digest = hashlib.sha256()
        try:
            for block in bounded_blocks(response, MAX_DOWNLOAD_BYTES, DOWNLOAD_SECONDS, 1 << 20):
                out.write(block)
                digest.update(block)
        except ReplyTooLarge:
            raise UserError(
                f"the download of {url} passed {MAX_DOWNLOAD_BYTES} bytes, far more than a task's data file; "
                f"stopped and removed. If the file is that large, download it by hand into {target.parent}"
            ) from None
        except ReplyTooSlow as slow:
            raise UserError(
                f"the download of {url} took more than {DOWNLOAD_SECONDS} s ({slow.size} bytes had come); stopped "
                f"and removed. Download it by hand into {target.parent}"
            ) from None
        if expected is not None and (actual := digest.hexdigest()) != expected:
            raise UserError(
                f"the download of {url} has sha256 {actual}, but the task spec expects {expected}; "
                f"the upstream file changed or the transfer was corrupted: download it by hand, check "
                f"it, and put it in {target.parent}"
            )


def local_copy(task: str, dataset: DatasetSpec, data_dir: Path | None, cache_dir: Path) -> Path | None:
    """The verified local copy of `dataset` in `data_dir`, $FLEXTAPE_DATA_DIR or `cache_dir/data`, else a listed
    stand-in found there (with a warning on stderr naming `task`), else None."""
    dirs = _data_dirs(data_dir, cache_dir)
    for folder in dirs:
        if (folder / dataset.file).is_file():
            return _verified(folder / dataset.file, dataset.sha256, dataset.url)
    for alternate in dataset.alternates:
        for folder in dirs:
            if (folder / alternate.file).is_file():
                logger.info(f"task {task}: {dataset.file} not found, using the stand-in {folder / alternate.file}")
                return _verified(folder / alternate.file, alternate.sha256, dataset.url)
    return None


def data_notes(dataset: DatasetSpec, path: Path) -> list[str]:
    """What a run should know about `path`, the file resolved for `dataset`, before it starts: a stand-in read in
    place of the file (and what it lacks), a file no checksum verifies."""
    for alternate in dataset.alternates:
        if path.as_posix().endswith(f"/{alternate.file}"):
            folder = path.as_posix().removesuffix(f"/{alternate.file}")
            unchecked = "" if alternate.sha256 else "; no checksum verifies it"
            return [
                f"the stand-in {path} is read in place of {dataset.file} ({alternate.note}){unchecked}; for the "
                f"full data, download {dataset.url} into {folder}"
            ]
    if dataset.sha256 is None:
        return [f"{path} is not verified: its spec gives no sha256 (add the file's `sha256sum` to the spec)"]
    return []


def resolve_dataset(
    task: str, dataset: DatasetSpec, data_dir: Path | None, cache_dir: Path, offline: bool = False
) -> Path:
    """Local path of `dataset` (see `local_copy`), else downloaded into `cache_dir/data` unless `offline`.

    Every local file with a known sha256 is verified; a mismatch or a failed download raises UserError.
    """
    found = local_copy(task, dataset, data_dir, cache_dir)
    if found is not None:
        return found
    looked = ", ".join(str(folder / dataset.file) for folder in _data_dirs(data_dir, cache_dir))
    target = cache_dir / "data" / dataset.file
    if offline:
        raise UserError(
            f"{task}: data file {dataset.file} not found (looked in {looked}); pass --data-dir, or run "
            f"without --offline to download {dataset.url}"
        )
    try:
        _download(dataset.url, target, dataset.sha256)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise UserError(
            f"task {task}: data file {dataset.file} not found (looked in {looked}) and the "
            f"download of {dataset.url} failed ({exc}); download it and put it in {target.parent} or "
            f"pass --data-dir"
        ) from exc
    return target


def resolve_data_file(spec: TaskSpec, data_dir: Path | None, cache_dir: Path) -> Path:
    """Local path of a task's data file (see `resolve_dataset`)."""
    return resolve_dataset(spec.task, spec.dataset, data_dir, cache_dir)
