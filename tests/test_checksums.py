"""Checksums in files: JSON with content_sha256, checksum files beside torch files, damaged files told apart."""

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest
import torch

from flextape_bench.checksums import (
    FIELD,
    DamagedFile,
    check_files,
    load_torch,
    read_intact,
    read_json,
    save_torch,
    sums_file,
    write_atomic,
    write_json,
)
from flextape_bench.errors import UserError


def test_json_carries_its_checksum_last_and_reads_back(tmp_path):
    path = tmp_path / "a" / "x.json"
    payload = {"b": [1, 2.5, None], "a": {"3": "é", "10": (1, 2)}, "nan": float("nan")}
    write_json(path, payload)
    text = path.read_text()
    assert list(json.loads(text))[-1] == FIELD and "é" in text  # plain, indented, readable JSON
    again = read_json(path)
    assert again.keys() == payload.keys() and again["a"] == {"3": "é", "10": [1, 2]} and again["b"] == [1, 2.5, None]
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.json"]  # no temporaries left


@pytest.mark.parametrize(
    "spoil, why",
    [
        (lambda text: text[: len(text) // 2], "not valid JSON"),
        (lambda text: text.replace('"b": [\n  1,', '"b": [\n  7,'), "does not match its content_sha256"),
        (lambda text: json.dumps({"b": [1]}), "no content_sha256"),
        (lambda text: "[]", "no content_sha256"),
    ],
)
def test_damaged_json_is_a_one_line_error_naming_the_file(tmp_path, spoil, why):
    path = tmp_path / "x.json"
    write_json(path, {"b": [1, 2]})
    path.write_text(spoil(path.read_text()))
    with pytest.raises(DamagedFile, match=why) as error:
        read_json(path)
    assert isinstance(error.value, UserError) and str(error.value).startswith(f"{path}: ")
    assert "\n" not in str(error.value)
    with pytest.raises(FileNotFoundError):
        read_json(tmp_path / "absent.json")


def test_read_intact_warns_once_about_a_damaged_file(tmp_path, capsys):
    path = tmp_path / "x.json"
    assert read_intact(path, "computing it again") is None and capsys.readouterr().err == ""  # missing: silent
    write_json(path, {"k": 1})
    assert read_intact(path, "computing it again") == {"k": 1}
    path.write_bytes(path.read_bytes()[:-3])
    assert read_intact(path, "computing it again") is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"flextape-bench: warning: {path}: ")
    assert err.rstrip().endswith("; computing it again")


def test_write_atomic_returns_the_sha256_of_what_it_wrote(tmp_path):
    import hashlib

    assert write_atomic(tmp_path / "t.txt", "ä\n") == hashlib.sha256("ä\n".encode()).hexdigest()
    assert write_atomic(tmp_path / "b.bin", b"\x00\x01") == hashlib.sha256(b"\x00\x01").hexdigest()


def test_torch_files_have_a_sha256sum_checksum_file(tmp_path):
    path = tmp_path / "m.pt"
    save_torch(path, {"t": torch.arange(4.0), "n": 3})
    assert torch.equal(load_torch(path, weights_only=True)["t"], torch.arange(4.0))
    assert sums_file(path).read_text().endswith("  m.pt\n")
    if shutil.which("sha256sum"):
        checked = subprocess.run(["sha256sum", "-c", sums_file(path).name], cwd=tmp_path, capture_output=True)
        assert checked.returncode == 0
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DamagedFile, match=f"^{path}: missing, or the content does not match its sha256 in m.pt.sha256"):
        load_torch(path)
    save_torch(path, {"n": 1})
    sums_file(path).unlink()  # as if killed between the two writes, or written before checksums
    with pytest.raises(DamagedFile, match=r"m\.pt\.sha256: missing"):
        load_torch(path)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_get_the_permissions_of_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_json(tmp_path / "x.json", {"k": 1})
        write_atomic(tmp_path / "x.txt", "text")
        write_atomic(tmp_path / "x.txt", "again")  # replacing a file too
    finally:
        os.umask(old)
    assert [oct(stat.S_IMODE((tmp_path / name).stat().st_mode)) for name in ("x.json", "x.txt")] == [oct(mode)] * 2


def test_the_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    events = []
    fsync, replace = os.fsync, os.replace

    def logged_fsync(fd):
        st = os.fstat(fd)
        events.append(("fsync", stat.S_ISDIR(st.st_mode), st.st_ino))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", logged_fsync)
    monkeypatch.setattr(os, "replace", lambda *args: events.append(("replace",)) or replace(*args))
    path = tmp_path / "sub" / "x.json"
    write_json(path, {"k": 1})
    assert events == [("fsync", False, events[0][2]), ("replace",), ("fsync", True, path.parent.stat().st_ino)]
    assert events[0][2] == path.stat().st_ino  # the file's own fsync, before the rename


# Writes argv[2] into the file argv[1] 200 times.
WRITER = """
import sys
from pathlib import Path
from flextape_bench.checksums import write_json
for i in range(200):
    write_json(Path(sys.argv[1]), {"writer": sys.argv[2], "i": i})
"""


def test_processes_writing_the_same_file_never_touch_each_others_temporaries(tmp_path):
    path = tmp_path / "x.json"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), name], stderr=subprocess.PIPE, text=True)
        for name in ("a", "b")
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    assert read_json(path) in ({"writer": "a", "i": 199}, {"writer": "b", "i": 199})
    assert os.listdir(tmp_path) == ["x.json"]


@pytest.mark.parametrize("name", ["../outside.txt", "/etc/hostname", "a/../../outside.txt"])
def test_a_listed_file_outside_the_folder_is_damage_and_never_read(tmp_path, name):
    folder = tmp_path / "run"
    folder.mkdir()
    (tmp_path / "outside.txt").write_text("x")
    with pytest.raises(DamagedFile, match="which is not a file inside"):
        check_files(folder, {name: hashlib.sha256(b"x").hexdigest()}, "summary.json")
