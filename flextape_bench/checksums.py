"""Files written whole, and checked when read, so that a truncated or corrupted file is never trusted.

Every file goes to a temporary name in its folder (`.<name>.<pid>.<random>.tmp`), is fsynced and renamed, and the
folder fsynced (`write_atomic`): a killed writer leaves the old file or the new one, and at most that temporary.
Each file also carries a checksum of its content, which every reader verifies (a disk, a copy or a hand can still
damage a file):

- JSON files (results and caches) hold `"content_sha256"` as their last key: the sha256 of the canonical JSON of the
  rest of the object (sorted keys, no spaces, UTF-8). They stay plain JSON for any other reader.
- Other files (torch `.pt` files, the converted model's folder) have a checksum file beside them in `sha256sum`
  format, one `<sha256>  <name>` line per file, which `sha256sum -c` checks too.

A file that fails (not parseable, no checksum, another content) raises `DamagedFile`, a one-line UserError naming it.
Caches log it as one warning line and compute the file again (`read_intact`, `warn_damaged`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from flextape_bench.errors import UserError

logger = logging.getLogger(__name__)
FIELD = "content_sha256"


class DamagedFile(UserError):
    """A file that cannot be trusted: not parseable, without its checksum, or not matching it."""

    def __init__(self, path: Path, why: str):
        super().__init__(f"{path}: {why}")
        self.path = path


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str | None:
    """sha256 of the file's bytes; None when there is no such file."""
    return sha256_of(path) if path.is_file() else None


def write_atomic(path: Path, data: str | bytes) -> str:
    """Write `data` (text as UTF-8) to `path` with `atomic_file`; returns the sha256 of the bytes written. This is
    the one writer of every file in the results tree and the caches."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_file(path) as handle:
        handle.write(raw)
    return hashlib.sha256(raw).hexdigest()


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A binary handle whose bytes appear at `path` only when the block ends without an exception: they go to a
    temporary file in the same folder, fsynced, renamed atomically, then the folder is fsynced (so the rename
    survives a crash). The file gets the permissions any `open()` gives (0666 less the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")  # this process's own name
    handle = open(tmp, "xb")  # noqa: SIM115 (closed by the with below) exclusive: never another writer's temporary
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # a failed write() names no file (a full disk): say which
        raise
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    """fsync a folder, so that the entries renamed or created in it are on disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _content_sha256(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """`payload` as indented JSON with its content_sha256 as the last key, written atomically."""
    if FIELD in payload:
        raise ValueError(f"{path}: the payload already has a {FIELD!r} key")
    parsed = json.loads(json.dumps(payload))  # what a reader gets back: tuples as lists, keys as strings
    write_atomic(path, json.dumps({**payload, FIELD: _content_sha256(parsed)}, indent=1, ensure_ascii=False) + "\n")


def read_json(path: Path) -> dict[str, Any]:
    """The object `write_json` wrote, without its checksum. DamagedFile when the file is not that (truncated,
    corrupted, edited, or written before checksums); FileNotFoundError when there is no file."""
    return read_json_digest(path)[0]


def read_json_digest(path: Path) -> tuple[dict[str, Any], str]:
    """`read_json(path)` and the sha256 of the file's bytes, from one read."""
    data = path.read_bytes()
    try:
        value = json.loads(data.decode("utf-8"))
    except ValueError as exc:  # invalid UTF-8 or JSON
        raise DamagedFile(path, f"not valid JSON ({exc}): truncated or corrupted") from None
    if not isinstance(value, dict) or not isinstance(value.get(FIELD), str):
        raise DamagedFile(path, f"no {FIELD} (written before checksums, or not by flextape-bench)")
    stored = value.pop(FIELD)
    if _content_sha256(value) != stored:
        raise DamagedFile(path, f"the content does not match its {FIELD}: corrupted or edited")
    return value, hashlib.sha256(data).hexdigest()


def warn_damaged(error: DamagedFile, action: str) -> None:
    """One warning line: the damaged file, what is wrong with it, and what is done instead (`action`)."""
    logger.warning("flextape-bench: warning: %s; %s", error, action)


def read_intact(path: Path, action: str) -> dict[str, Any] | None:
    """`read_json(path)`, or None when the file is missing or damaged; a damaged file is reported with `action`,
    what the caller does instead (compute it again, redo a chunk)."""
    if not path.exists():
        return None
    try:
        return read_json(path)
    except DamagedFile as error:
        warn_damaged(error, action)
        return None


def check_files(folder: Path, digests: Mapping[str, str], listed_in: str) -> None:
    """Raise DamagedFile unless every file in `digests` (path relative to `folder` -> sha256), listed in the file
    named `listed_in`, exists with that sha256."""
    for name, digest in digests.items():
        if Path(name).is_absolute() or ".." in Path(name).parts:  # only files inside `folder` are ever listed
            raise DamagedFile(folder / listed_in, f"lists {name!r}, which is not a file inside {folder}")
        if sha256_file(folder / name) != digest:
            raise DamagedFile(folder / name, f"missing, or the content does not match its sha256 in {listed_in}")


def write_sums(sums: Path, digests: Mapping[str, str]) -> None:
    """The checksum file `sums`: one `<sha256>  <name>` line per file (names relative to its folder)."""
    write_atomic(sums, "".join(f"{digest}  {name}\n" for name, digest in digests.items()))


def check_sums(sums: Path) -> None:
    """Raise DamagedFile unless the checksum file `sums` exists, lists files, and each has its listed sha256."""
    try:
        lines = sums.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DamagedFile(
            sums,
            "missing, so the files it would list cannot be checked (written before checksums, "
            "or the writer was killed)",
        ) from None
    digests = {name: digest for digest, name in (line.split("  ", 1) for line in lines if "  " in line)}
    if not digests or len(digests) != len(lines):
        raise DamagedFile(sums, "not a checksum file of `<sha256>  <name>` lines")
    check_files(sums.parent, digests, sums.name)


def sums_file(path: Path) -> Path:
    """The checksum file of a single file: `<name>.sha256` beside it."""
    return path.with_name(path.name + ".sha256")


def save_torch(path: Path, value: Any) -> None:
    """`torch.save` of `value` to `path`, atomically, then its checksum file."""
    import torch

    buffer = io.BytesIO()
    torch.save(value, buffer)
    write_sums(sums_file(path), {path.name: write_atomic(path, buffer.getvalue())})


def load_torch(path: Path, **kwargs: Any) -> Any:
    """`torch.load(path, **kwargs)` of a file `save_torch` wrote, once it matches its checksum file (else
    DamagedFile)."""
    import torch

    check_sums(sums_file(path))
    return torch.load(path, **kwargs)
