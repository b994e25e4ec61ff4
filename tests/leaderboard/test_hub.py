"""The Hub dataset folder of real runs (the runner on a tiny random Llama) and its upload to a local fake of the Hub
API: card and configs, JSON Lines that `datasets` loads, byte-identical rebuilds, no token anywhere, only the tasks
the leaderboard keeps, tasks without cases, and the requests create_repo + upload_folder make; errors as one-line
UserErrors."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import shutil
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import datasets
import huggingface_hub
import pytest
import yaml
from datasets.info import DatasetInfosDict

from flextape_bench.checksums import read_json, write_json
from flextape_bench.cli import main
from flextape_bench.errors import UserError
from flextape_bench.leaderboard.hub import CaseLine, SummaryLine, build_dataset_folder, push_folder
from flextape_bench.records import problems
from flextape_bench.runner import RunOptions, run

SENTINEL = "hf_SENTINELtoken0123456789"
REPO = "my-org/flextape-runs"
PAIR, EFF = "seesaw_cf_P19_P101", "seesaw_cf_P21_P101_eff"


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory, tiny_llama, data_dir) -> list[Path]:
    """Two finished runs of the tiny random Llama as 'org/tiny-llama': FT on the first case of a pair and an
    efficacy task, started with the token sentinel in its command line, and no edit on the first two cases."""
    root = tmp_path_factory.mktemp("runs")
    dirs = []
    for editor, limit, hparams in (("ft", 1, ["num_steps=2", "layers=[1]"]), ("none", 2, [])):
        options = RunOptions(
            model="org/tiny-llama",
            editor=editor,
            tasks=[PAIR, EFF],
            limit=limit,
            num_edits=1,
            hparams=hparams,
            data_dir=data_dir,
            output=root / "results",
            cache=root / "cache",
        )
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sys, "argv", ["/venv/bin/flextape-bench", "--editor", editor, "--output", f"/x/{SENTINEL}"])
            dirs.append(run(options, tiny_llama)[0].path)
    return dirs


def _every_task(run_dirs: list[Path]) -> dict[Path, list[str]]:
    return {path: [PAIR, EFF] for path in run_dirs}


def _build(selection: dict[Path, list[str]], folder: Path) -> list[Path]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_TOKEN", SENTINEL)
        return build_dataset_folder(selection, folder, REPO)


@pytest.fixture(scope="module")
def folder(run_dirs, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hub") / "dataset"
    _build(_every_task(run_dirs), folder)
    return folder


def _card(folder: Path) -> tuple[dict[str, Any], str]:
    _, front, body = (folder / "README.md").read_text().split("---\n", 2)
    return yaml.safe_load(front), body


def _config_files(meta: dict[str, Any]) -> dict[str, list[str]]:
    return {c["config_name"]: [p for files in c["data_files"] for p in files["path"]] for c in meta["configs"]}


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _runs_table(body: str) -> list[tuple[str, ...]]:
    """The card's table of runs as (editor, run, task, cases) rows."""
    return [
        tuple(cell.strip() for cell in line.strip("|").split("|"))[1:]
        for line in body.splitlines()
        if line.startswith("| org/tiny-llama ")
    ]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _keys(value: Any, prefix: str = "") -> set[str]:
    """Every dotted key path of a JSON value (list elements under `[]`)."""
    if isinstance(value, dict):
        return {f"{prefix}{k}" for k in value} | {p for k, v in value.items() for p in _keys(v, f"{prefix}{k}.")}
    if isinstance(value, list):
        return {p for item in value for p in _keys(item, f"{prefix}[].")}
    return set()


def test_card_has_a_config_per_task_and_the_lines_have_one_shape(folder, run_dirs):
    meta, body = _card(folder)
    assert meta["license"] == "mit" and "knowledge-editing" in meta["tags"] and meta["pretty_name"]
    files = _config_files(meta)
    assert set(files) == {"summary", PAIR, EFF}
    assert _files(folder) == {"README.md", *(f for paths in files.values() for f in paths)}
    assert files[PAIR] == [
        f"data/{PAIR}/org__tiny-llama/ft/run_001.jsonl",
        f"data/{PAIR}/org__tiny-llama/none/run_001.jsonl",
    ]
    cases = [line for f in files[PAIR] for line in _lines(folder / f)]
    assert [(c["model"], c["editor"], c["run"], c["task"], c["case_id"]) for c in cases] == [
        ("org/tiny-llama", "ft", "run_001", PAIR, 22775),
        ("org/tiny-llama", "none", "run_001", PAIR, 22775),
        ("org/tiny-llama", "none", "run_001", PAIR, 22776),
    ]
    record = json.loads((run_dirs[1] / PAIR / "case_22776.json").read_text())
    assert cases[2]["rewrite"] == record["rewrite"]
    assert cases[2]["post"] == {"generation": None, "texts": None, **record["post"]}  # declared, null where absent
    assert len({frozenset(_keys(c)) for c in cases}) == 1  # gender groups, truth: the same keys on every line
    summary = _lines(folder / "data/summary.jsonl")
    assert [(s["editor"], s["task"], s["n_cases"]) for s in summary] == [
        ("ft", PAIR, 1),
        ("ft", EFF, 1),
        ("none", PAIR, 2),
        ("none", EFF, 2),
    ]
    assert summary[0]["config"]["identity"]["hparams"]["num_steps"] == 2
    assert (
        summary[2]["results"]["efficacy"]
        == json.loads((run_dirs[1] / "summary.json").read_text())["tasks"][PAIR]["efficacy"]
    )
    assert "| org/tiny-llama | ft       | run_001 | seesaw_cf_P19_P101     |       1 |" in body
    assert "flextape-bench --editor none --output '/x/<redacted>'" in body  # the argv of timing.json, redacted
    assert "Halevy" in body and "Empirical Methods in Natural Language Processing" in body


def test_each_config_loads_with_datasets(folder, tmp_path):
    meta, _ = _card(folder)
    files = _config_files(meta)
    features = DatasetInfosDict.from_dataset_card_data(meta)[PAIR].features
    # the FT run's one case has no known true field of work: `cross.truth` is null throughout its file
    pair = datasets.load_dataset(
        "json",
        data_files=[str(folder / f) for f in files[PAIR]],
        features=features,
        split="train",
        cache_dir=str(tmp_path),
    )
    assert pair.num_rows == 3 and pair["cross"][0]["truth"] is None and pair["cross"][2]["truth"]
    summary = datasets.load_dataset(str(folder), "summary", split="train", cache_dir=str(tmp_path))
    assert summary.num_rows == 4 and summary["task"] == [PAIR, EFF, PAIR, EFF]


def test_real_case_records_conform_to_the_declared_schema(run_dirs):
    """Every case record the runner wrote (FT and no edit; a pair task with cross-property sections, an efficacy
    task without) is of the schema; a record with a key it does not declare, or a value of another type, is not."""
    paths = sorted(path for run in run_dirs for path in run.glob("*/case_*.json"))
    records = [read_json(path) for path in paths]
    assert len(records) == 6 and any("cross" in r for r in records) and any("cross" not in r for r in records)
    assert [problems(record) for record in records] == [[]] * len(records)
    bad = {**records[0], "extra": 1, "chunk": "0", "pre": {**records[0]["pre"], "edit": {}}}
    found = problems(bad)
    assert "record: undeclared key 'extra'" in found and "record.chunk: str, not int" in found
    assert "record.pre.edit: no 'p_new'" in found


def test_the_exported_columns_are_the_declared_ones(folder):
    """The features of every task config are the declared case line's, also where no record has the key (the
    efficacy task has no cross-property section); only the open parts (metrics, probe groups) come from the data."""
    meta, _ = _card(folder)
    infos = DatasetInfosDict.from_dataset_card_data(meta)
    case_columns = set(CaseLine.__required_keys__ | CaseLine.__optional_keys__)
    assert case_columns == {
        "model",
        "editor",
        "run",
        "task",
        "case_id",
        "chunk",
        "rewrite",
        "probes",
        "cross",
        "long_form",
        "metrics",
        "pre",
        "post",
    }
    for task in (PAIR, EFF):
        features = infos[task].features
        assert set(features) == case_columns
        assert features["case_id"].dtype == "int64" and features["pre"]["edit"]["p_new"].dtype == "float64"
        assert set(features["cross"]) == {"property", "prompts", "candidates", "truth", "ranking"}
        assert set(features["pre"]) == {"edit", "probes", "generation", "texts"}
    assert set(infos[EFF].features["metrics"]) == {"efficacy"}  # open: the task's metrics, from the data
    assert set(infos[PAIR].features["metrics"]) == {
        "efficacy",
        "probe_delta",
        "cross_property",
        "gender_shift",
        "race_shift",
        "geography_shift",
        "continent_shift",
    }
    assert set(infos["summary"].features) == set(SummaryLine.__annotations__)
    line = _lines(folder / f"data/{EFF}/org__tiny-llama/none/run_001.jsonl")[0]
    assert line["cross"] is None and line["long_form"] is None and line["pre"]["generation"] is None


def test_a_record_of_another_schema_is_refused(run_dirs, tmp_path):
    run = shutil.copytree(run_dirs[1], tmp_path / "run")
    case = next((run / EFF).glob("case_*.json"))
    write_json(case, {**read_json(case), "surprise": True})
    with pytest.raises(UserError) as caught:
        _build({run: [EFF]}, tmp_path / "dataset")
    assert str(caught.value) == (
        f"{case}: not a case record of this flextape-bench version: record: undeclared key 'surprise'"
    )


def test_rebuild_is_byte_identical_and_holds_no_token(folder, run_dirs, tmp_path):
    again = tmp_path / "again"
    written = _build(dict(reversed(_every_task(run_dirs).items())), again)
    assert sorted(p.relative_to(again) for p in written) == sorted(
        p.relative_to(folder) for p in folder.rglob("*") if p.is_file()
    )
    for path in written:
        data = path.read_bytes()
        assert data == (folder / path.relative_to(again)).read_bytes()
        assert SENTINEL.encode() not in data


def test_the_leaderboard_publishes_only_the_tasks_it_keeps(run_dirs, tmp_path, monkeypatch):
    """ft run_002 has the pair task only: the leaderboard keeps ft run_001 for the efficacy task alone, so its pair
    task (superseded) is nowhere in the dataset."""
    results = shutil.copytree(run_dirs[0].parents[2], tmp_path / "results")
    ft = results / "org__tiny-llama" / "ft"
    newer = shutil.copytree(ft / "run_001", ft / "run_002")
    shutil.rmtree(newer / EFF)
    summary = read_json(newer / "summary.json")
    summary["run"], summary["tasks"] = "run_002", {PAIR: summary["tasks"][PAIR]}
    summary["files"] = {name: digest for name, digest in summary["files"].items() if not name.startswith(EFF)}
    write_json(newer / "summary.json", summary)
    monkeypatch.setenv("HF_TOKEN", SENTINEL)
    argv = [
        "leaderboard",
        "--results",
        str(results),
        "--output",
        str(tmp_path / "board"),
        "--push-to-hub",
        REPO,
        "--dry-run",
    ]
    assert main(argv) == 0
    folder = tmp_path / "board" / "hub"
    meta, body = _card(folder)
    stems = {PAIR: ["ft/run_002", "none/run_001"], EFF: ["ft/run_001", "none/run_001"]}
    expected = {task: [f"data/{task}/org__tiny-llama/{stem}.jsonl" for stem in kept] for task, kept in stems.items()}
    assert _config_files(meta) == {"summary": ["data/summary.jsonl"], **expected}
    assert _files(folder) == {
        ".flextape-bench-dry-run",
        "README.md",
        "data/summary.jsonl",
        *expected[PAIR],
        *expected[EFF],
    }
    assert [(s["editor"], s["run"], s["task"]) for s in _lines(folder / "data/summary.jsonl")] == [
        ("ft", "run_001", EFF),
        ("ft", "run_002", PAIR),
        ("none", "run_001", PAIR),
        ("none", "run_001", EFF),
    ]
    assert [row[:3] for row in _runs_table(body)] == [
        ("ft", "run_001", EFF),
        ("ft", "run_002", PAIR),
        ("none", "run_001", PAIR),
        ("none", "run_001", EFF),
    ]


def test_a_task_without_cases_has_no_file_and_no_config(run_dirs, tmp_path):
    """The efficacy task has no case files in either run (ft: not even its directory), the pair task none in the FT
    run: no file for those, no efficacy config, the card says so, and the rest loads."""
    ft, none = (shutil.copytree(path, tmp_path / "runs" / path.parent.name) for path in run_dirs)
    shutil.rmtree(ft / EFF)
    for case in [*(none / EFF).glob("case_*.json"), *(ft / PAIR).glob("case_*.json")]:
        case.unlink()
    folder = tmp_path / "dataset"
    written = _build({ft: [PAIR, EFF], none: [PAIR, EFF]}, folder)
    meta, body = _card(folder)
    pair = [f"data/{PAIR}/org__tiny-llama/none/run_001.jsonl"]
    assert _config_files(meta) == {"summary": ["data/summary.jsonl"], PAIR: pair}
    assert set(DatasetInfosDict.from_dataset_card_data(meta)) == {"summary", PAIR}
    assert (
        sorted(p.relative_to(folder).as_posix() for p in written)
        == sorted(_files(folder))
        == ["README.md", *pair, "data/summary.jsonl"]
    )
    assert _runs_table(body) == [
        ("ft", "run_001", PAIR, "0"),
        ("ft", "run_001", EFF, "0"),
        ("none", "run_001", PAIR, "2"),
        ("none", "run_001", EFF, "0"),
    ]
    assert f"hence without a config (only in `summary`): `{EFF}`." in body
    assert f'load_dataset("{REPO}", "{PAIR}", split="train")' in body
    cases = datasets.load_dataset(str(folder), PAIR, split="train", cache_dir=str(tmp_path / "cache"))
    assert cases["case_id"] == [22775, 22776]
    summary = datasets.load_dataset(str(folder), "summary", split="train", cache_dir=str(tmp_path / "cache"))
    assert summary["task"] == [PAIR, EFF, PAIR, EFF]


@pytest.mark.parametrize("model, task", [("..", ".."), ("..", "t"), ("m", "..")])
def test_build_keeps_every_file_inside_its_folder(tmp_path, model, task):
    """A crafted summary.json with model and task '..' put the case file at <folder>/data/../../e/run_001.jsonl,
    outside the folder: a task '..' is refused, naming the file, with nothing written; a model '..' is a folder name
    like any other (`slug` gives 'model'), and every file stays inside the folder."""
    run = tmp_path / "results" / "m" / "e" / "run_001"
    write_json(run / "config.json", {"identity": {}})
    write_json(run / "summary.json", {"model": model, "editor": "e", "run": "run_001", "tasks": {task: {"n_cases": 1}}})
    write_json(run / task / "case_1.json", {"case_id": 1})
    before = {path: (tmp_path / path).read_bytes() for path in _files(tmp_path)}
    if task == "..":
        with pytest.raises(UserError) as caught:
            build_dataset_folder({run: [task]}, tmp_path / "out" / "dataset", REPO)
        assert str(caught.value).startswith(f"{run / 'summary.json'}: task '..' ")
        assert {path: (tmp_path / path).read_bytes() for path in _files(tmp_path)} == before
        return
    with contextlib.suppress(UserError):  # whatever else it finds wrong with this minimal run
        build_dataset_folder({run: [task]}, tmp_path / "out" / "dataset", REPO)
    written = set(_files(tmp_path)) - set(before)
    assert written and all(path.startswith("out/dataset/") for path in written)


def test_build_refuses_what_cannot_be_published(run_dirs, tmp_path):
    with pytest.raises(UserError, match="--push-to-hub 'no-slash'"):
        build_dataset_folder(_every_task(run_dirs), tmp_path / "a", "no-slash")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        build_dataset_folder(_every_task(run_dirs), tmp_path / "full", REPO)
    with pytest.raises(UserError, match=f"^{re.escape(str(run_dirs[0]))}: task 'nope' is not in its summary.json"):
        build_dataset_folder({run_dirs[0]: [PAIR, "nope"]}, tmp_path / "d", REPO)
    unfinished = shutil.copytree(run_dirs[0], tmp_path / "org__tiny-llama" / "ft" / "run_001")
    (unfinished / "summary.json").unlink()
    with pytest.raises(UserError, match=r"no summary\.json"):
        build_dataset_folder({unfinished: [PAIR]}, tmp_path / "b", REPO)
    copy = shutil.copytree(run_dirs[0], tmp_path / "copy")
    with pytest.raises(UserError, match="same name"):
        build_dataset_folder({run_dirs[0]: [PAIR], copy: [EFF]}, tmp_path / "c", REPO)


@dataclass
class FakeHub:
    """What the fake Hub saw: every request (method, path, Authorization header, JSON body) and the committed
    files. `refuse` maps a path ("*": every path) to an error status to answer with."""

    endpoint: str = ""
    refuse: dict[str, int] = field(default_factory=dict)
    calls: list[tuple[str, str, str | None, Any]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        """Status and JSON answer to a request; `body` is parsed when it is JSON, bytes otherwise (ndjson)."""
        status = self.refuse.get(path) or self.refuse.get("*")
        if status:
            return status, {"error": f"refused by the fake Hub: {method} {path}"}
        if (method, path) == ("POST", "/api/repos/create"):
            return 200, {"url": f"{self.endpoint}/datasets/{body['organization']}/{body['name']}"}
        if (method, path) == ("POST", "/api/validate-yaml"):  # create_commit without hf_xet
            return 200, {"errors": [], "warnings": []}
        match = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/(preupload|commit)/main", path)
        if method == "POST" and match and match[2] == "preupload":
            files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in body["files"]]
            return 200, {"files": files}
        if method == "POST" and match:
            for item in map(json.loads, body.splitlines()):
                if item["key"] == "file":
                    assert item["value"]["encoding"] == "base64"
                    self.files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            oid = "0123456789abcdef" * 2 + "01234567"
            return 200, {"commitUrl": f"{self.endpoint}/datasets/{match[1]}/commit/{oid}", "commitOid": oid}
        return 404, {"error": f"the fake Hub does not implement {method} {path}"}


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub

    def do_GET(self) -> None:
        self._respond()

    def do_POST(self) -> None:
        self._respond()

    def _respond(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?")[0]
        if body and self.headers.get("Content-Type", "").startswith("application/json"):
            body = json.loads(body)
        self.hub.calls.append((self.command, path, self.headers.get("Authorization"), body))
        status, payload = self.hub.answer(self.command, path, body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hub(monkeypatch) -> Iterator[FakeHub]:
    """A fake Hub API on 127.0.0.1, set as HF_ENDPOINT, with HF_TOKEN the sentinel."""
    fake = FakeHub()
    handler = type("Handler", (_Handler,), {"hub": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    fake.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_ENDPOINT", fake.endpoint)
    monkeypatch.setenv("HF_TOKEN", SENTINEL)
    yield fake
    server.shutdown()
    server.server_close()
    thread.join()


def test_push_creates_the_dataset_repo_and_commits_every_file(folder, hub):
    url = push_folder(folder, REPO, private=True)
    assert url.startswith(f"{hub.endpoint}/datasets/{REPO}/commit/")
    assert all(auth == f"Bearer {SENTINEL}" for _, _, auth, _ in hub.calls)
    assert hub.calls[0] == (
        "POST",
        "/api/repos/create",
        f"Bearer {SENTINEL}",
        {"name": "flextape-runs", "organization": "my-org", "visibility": "private", "type": "dataset"},
    )
    paths = [(method, path) for method, path, _, _ in hub.calls]
    assert ("POST", f"/api/datasets/{REPO}/commit/main") in paths
    api = f"/api/datasets/{REPO}"
    assert set(paths) <= {
        ("POST", "/api/repos/create"),
        ("POST", "/api/validate-yaml"),
        ("POST", f"{api}/preupload/main"),
        ("POST", f"{api}/commit/main"),
    }
    local = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert hub.files == local


def test_push_needs_a_token(folder, monkeypatch, tmp_path):
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    with pytest.raises(UserError, match="set HF_TOKEN or run `hf auth login`"):
        push_folder(folder, REPO)


@pytest.mark.parametrize("repo_id", ["flextape-runs", "a/b/c", "my-org/bad name", "my-org/x--y"])
def test_push_refuses_a_bad_repo_id(folder, hub, repo_id):
    with pytest.raises(UserError, match=r"--push-to-hub .*ORG/NAME"):
        push_folder(folder, repo_id)
    assert hub.calls == []


@pytest.mark.parametrize(("path", "status"), [("*", 403), ("/api/validate-yaml", 400)])
def test_push_reports_an_error_status_in_one_line_without_the_token(folder, hub, path, status):
    hub.refuse[path] = status
    with pytest.raises(UserError) as error:
        push_folder(folder, REPO)
    message = str(error.value)
    assert message.startswith(f"--push-to-hub {REPO}: {hub.endpoint} answered HTTP {status} (refused by the fake Hub")
    assert "\n" not in message and SENTINEL not in message
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_push_reports_an_unreachable_hub(folder, monkeypatch):
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_TOKEN", SENTINEL)
    with pytest.raises(UserError, match=f"cannot reach http://127.0.0.1:{port}") as error:
        push_folder(folder, REPO)
    assert SENTINEL not in str(error.value)
