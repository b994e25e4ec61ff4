"""`flextape-bench leaderboard`: what it prints and writes, its one-line errors, and the Hub flags (with a stand-in
for the hub module: nothing is pushed)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

import flextape_bench.leaderboard
from flextape_bench.checksums import read_json, write_json
from flextape_bench.cli import main
from flextape_bench.results import slug

from .conftest import FEMALE, MALE, WEIRD, pair_task, write_run

MARK = ".flextape-bench-dry-run"


@pytest.fixture
def fake_hub(monkeypatch):
    calls: list[tuple] = []

    def build_dataset_folder(selection, folder, repo_id):
        assert not folder.exists() or not any(folder.iterdir())
        folder.mkdir(parents=True, exist_ok=True)
        calls.append(("build", {Path(p): list(tasks) for p, tasks in selection.items()}, folder, repo_id))
        (folder / "README.md").write_text(repo_id)
        return [folder / "README.md"]

    def push_folder(folder, repo_id, *, private=False):
        calls.append(("push", (folder / "README.md").read_text(), repo_id, private))
        return f"https://huggingface.co/datasets/{repo_id}"

    def check_repo_id(repo_id):
        calls.append(("check", repo_id))

    hub = types.SimpleNamespace(
        check_repo_id=check_repo_id, build_dataset_folder=build_dataset_folder, push_folder=push_folder
    )
    monkeypatch.setitem(sys.modules, "flextape_bench.leaderboard.hub", hub)
    monkeypatch.setattr(flextape_bench.leaderboard, "hub", hub, raising=False)
    return calls


def test_prints_the_table_and_the_paths(results, tmp_path, capsys):
    out = tmp_path / "board"
    assert main(["leaderboard", "--results", str(results), "--output", str(out)]) == 0
    stdout, stderr = capsys.readouterr()
    assert stdout.startswith("| model") and "| ***" in stdout
    for name in (
        "overview.md",
        "leaderboard.md",
        "leaderboard.csv",
        "leaderboard.tex",
        "models.csv",
        "runs.csv",
        "group_shifts.csv",
        "index.html",
        "plots/pair__women_men.svg",
        "plots/gemma3-270m__pair__gender_shift.svg",
        "runs/gemma3-270m/ft/run_002/config.json",
    ):
        assert f"  {out / name}\n" in stdout and (out / name).stat().st_size > 0
    assert "skipped 1 unfinished run(s)" in stderr and str(results / "gemma3-270m" / "ft" / "run_003") in stderr


def test_all_runs_adds_rows(results, tmp_path, capsys):
    assert main(["leaderboard", "--results", str(results), "--output", str(tmp_path), "--all-runs"]) == 0
    assert len((tmp_path / "leaderboard.csv").read_text().splitlines()) == 1 + 6
    assert len((tmp_path / "overview.csv").read_text().splitlines()) == 1 + 4  # ft run_001 and run_002 apart


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--dry-run"], "--dry-run needs --push-to-hub ORG/NAME"),
        (["--push-to-hub", "no-slash"], "--push-to-hub 'no-slash': give a Hugging Face repository id ORG/NAME"),
    ],
)
def test_flag_errors(results, tmp_path, capsys, extra, message):
    assert main(["leaderboard", "--results", str(results), "--output", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_damaged_files(results, tmp_path, capsys):
    """A damaged summary.json makes its run unfinished (skipped, named); a damaged config.json of a finished run is
    a one-line error naming it."""
    summary = results / "gemma3-270m" / "ft" / "run_002" / "summary.json"
    summary.write_text("{")
    assert main(["leaderboard", "--results", str(results), "--output", str(tmp_path / "a")]) == 0
    captured = capsys.readouterr()
    assert f"flextape-bench: warning: {summary}: not valid JSON" in captured.err
    assert "skipped 2 unfinished run(s) (no intact summary.json)" in captured.err
    config = results / "gemma3-270m" / "ft" / "run_001" / "config.json"
    config.write_text(config.read_text().replace('"limit": 4', '"limit": 5'))
    assert main(["leaderboard", "--results", str(results), "--output", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert (
        err[-1] == f"flextape-bench: error: {config}: the content does not match its content_sha256: corrupted or "
        "edited"
    )


def test_output_that_is_a_file(results, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main(["leaderboard", "--results", str(results), "--output", str(tmp_path / "file")]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err


def test_dry_run_writes_the_hub_folder_and_pushes_nothing(results, tmp_path, capsys, fake_hub):
    (tmp_path / "hub").mkdir()  # empty: taken
    argv = [
        "leaderboard",
        "--results",
        str(results),
        "--output",
        str(tmp_path),
        "--push-to-hub",
        "org/runs",
        "--dry-run",
    ]
    assert main(argv) == 0
    check, (kind, selection, folder, repo_id) = fake_hub
    assert check == ("check", "org/runs")
    assert (kind, folder, repo_id) == ("build", tmp_path / "hub", "org/runs")
    # ft run_001 is kept for eff only: its pair is superseded by run_002's
    assert {p.relative_to(results).as_posix(): tasks for p, tasks in selection.items()} == {
        "_b_x___b_y_/rome/run_001": ["lf", "pair"],
        "gemma3-270m/ft/run_001": ["eff"],
        "gemma3-270m/ft/run_002": ["pair"],
        "gemma3-270m/none/run_001": ["pair"],
    }
    assert sorted(p.name for p in folder.iterdir()) == [MARK, "README.md"]
    assert f"nothing pushed; the dataset folder for org/runs: {folder}" in capsys.readouterr().out


def test_a_dry_run_replaces_its_own_earlier_folder(results, tmp_path, fake_hub):
    argv = [
        "leaderboard",
        "--results",
        str(results),
        "--output",
        str(tmp_path),
        "--push-to-hub",
        "org/runs",
        "--dry-run",
    ]
    assert main(argv) == 0
    (tmp_path / "hub" / "data").mkdir()
    (tmp_path / "hub" / "data" / "stale.jsonl").write_text("of a run since removed")
    assert main([*argv[:-2], "org/other", "--dry-run"]) == 0
    assert sorted(p.name for p in (tmp_path / "hub").iterdir()) == [MARK, "README.md"]
    assert (tmp_path / "hub" / "README.md").read_text() == "org/other"


@pytest.mark.parametrize(
    "make",
    [
        lambda hub: (hub.mkdir(), (hub / "notes.txt").write_text("mine")),
        lambda hub: hub.write_text("mine"),
    ],
    ids=["folder", "file"],
)
def test_a_dry_run_refuses_a_hub_folder_it_did_not_write(results, tmp_path, capsys, fake_hub, make):
    """The user's own <output>/hub survives, and nothing else is written."""
    out = tmp_path / "board"
    out.mkdir()
    make(out / "hub")
    argv = ["leaderboard", "--results", str(results), "--output", str(out), "--push-to-hub", "org/runs", "--dry-run"]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"flextape-bench: error: {out / 'hub'}: not written by `leaderboard --dry-run` (no {MARK} in it), so not "
        "replaced; move or delete it, or give another --output\n"
    )
    assert sorted(p.name for p in out.iterdir()) == ["hub"]
    assert (out / "hub" / "notes.txt" if (out / "hub").is_dir() else out / "hub").read_text() == "mine"
    assert fake_hub == [("check", "org/runs")]


def test_dry_run_of_all_runs_selects_every_task(results, tmp_path, fake_hub):
    argv = [
        "leaderboard",
        "--results",
        str(results),
        "--output",
        str(tmp_path),
        "--all-runs",
        "--push-to-hub",
        "org/runs",
        "--dry-run",
    ]
    assert main(argv) == 0
    assert fake_hub[1][1][results / "gemma3-270m" / "ft" / "run_001"] == ["eff", "pair"]


def test_push_builds_in_a_temporary_folder(results, tmp_path, capsys, fake_hub):
    argv = ["leaderboard", "--results", str(results), "--output", str(tmp_path), "--push-to-hub", "org/runs"]
    assert main(argv) == 0
    _, (_, _, folder, _), push = fake_hub
    assert push == ("push", "org/runs", "org/runs", False)
    assert not folder.exists() and not (tmp_path / "hub").exists()
    assert "pushed: https://huggingface.co/datasets/org/runs" in capsys.readouterr().out


@pytest.mark.parametrize(
    "field, value", [("task", "../../x"), ("task", ".."), ("editor", "../../e"), ("run", "../run_001")]
)
def test_names_in_a_summary_that_are_not_names_are_refused(tmp_path, capsys, field, value):
    """A crafted summary.json naming task '../../x' (or an editor or run that would name a folder outside):
    a one-line error naming the file, and nothing written."""
    results = tmp_path / "results"
    run = write_run(results, "m", "ft", 1, {"pair": pair_task([(False, True)], {"female": [0.1]}, [(True, True)])})
    summary = read_json(run / "summary.json")
    if field == "task":
        summary["tasks"] = {value: summary["tasks"]["pair"]}
    else:
        summary[field] = value
    write_json(run / "summary.json", summary)
    out = tmp_path / "board"
    assert main(["leaderboard", "--results", str(results), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"flextape-bench: error: {run / 'summary.json'}: {field} {value!r} ") and err.count("\n") == 1
    assert err.endswith("; repair or remove this run\n")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_private_push_creates_a_private_repository(results, tmp_path, fake_hub):
    argv = ["leaderboard", "--results", str(results), "--output", str(tmp_path), "--push-to-hub", "org/runs"]
    assert main([*argv, "--private"]) == 0
    assert fake_hub[-1] == ("push", "org/runs", "org/runs", True)


def test_private_without_a_push_is_refused(results, tmp_path, capsys):
    argv = ["leaderboard", "--results", str(results), "--output", str(tmp_path / "out"), "--private"]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        "flextape-bench: error: --private needs --push-to-hub ORG/NAME (it makes the pushed dataset repository private)"
    )
    assert not (tmp_path / "out").exists()


def test_tasks_keeps_only_the_named_tasks_and_removes_what_an_earlier_call_wrote_for_others(results, tmp_path, capsys):
    """The rows, plots and configs of the named tasks only; the unfinished runs listed are those that name one of
    them; the files of an earlier, wider call that this one does not write are gone."""
    config = results / "gemma3-270m" / "ft" / "run_003" / "config.json"  # the unfinished run: it was running eff
    written = read_json(config)
    written["identity"]["tasks"] = {"eff": "00" * 32}
    write_json(config, written)
    eff4 = [(False, True)] * 4
    write_run(results, "gemma3-270m", "memit", 1, {"pair2": pair_task(eff4, {"female": FEMALE, "male": MALE}, eff4)})
    out = tmp_path / "board"
    assert main(["leaderboard", "--results", str(results), "--output", str(out)]) == 0
    wide = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    assert Path("runs/gemma3-270m/ft/run_001/config.json") in wide  # ft's newest run with eff
    assert {Path("plots/pair2__women_men.svg"), Path("runs/gemma3-270m/memit/run_001/config.json")} <= wide
    capsys.readouterr()

    assert main(["leaderboard", "--results", str(results), "--output", str(out), "--tasks", "pair"]) == 0
    stderr = capsys.readouterr().err
    rows = (out / "leaderboard.csv").read_text().splitlines()[1:]
    assert len(rows) == 3 and all(",pair," in row for row in rows)  # ft run_002, none, rome
    left = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    plots = {p for p in left if p.parts[0] == "plots"}
    assert plots and all("pair__" in p.name for p in plots)
    assert {p for p in left if p.parts[0] == "runs"} == {
        Path("runs/gemma3-270m/ft/run_002/config.json"),
        Path("runs/gemma3-270m/none/run_001/config.json"),
        Path("runs", slug(WEIRD), "rome/run_001/config.json"),
    }
    for folder in ("runs/gemma3-270m/ft/run_001", "runs/gemma3-270m/memit"):  # the folders left empty go too
        assert not (out / folder).exists()
    assert {p for p in left if p.parts[0] not in ("plots", "runs")} == {
        p for p in wide if p.parts[0] not in ("plots", "runs")
    }
    assert "unfinished" not in stderr  # run_003 was running eff, not pair

    assert main(["leaderboard", "--results", str(results), "--output", str(out), "--tasks", "eff"]) == 0
    assert str(results / "gemma3-270m" / "ft" / "run_003") in capsys.readouterr().err


@pytest.mark.parametrize(
    "names, message",
    [
        (
            "pair,nosuch",
            "--tasks nosuch: no finished run or run record has this task; the finished ones have: eff, lf, pair",
        ),
        (" , ", "--tasks: no task names"),
    ],
)
def test_tasks_that_are_not_found_are_a_one_line_error_that_writes_nothing(results, tmp_path, capsys, names, message):
    out = tmp_path / "board"
    assert main(["leaderboard", "--results", str(results), "--output", str(out), "--tasks", names]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()
