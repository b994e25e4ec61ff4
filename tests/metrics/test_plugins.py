"""Metrics are plugins: the runner and the CLI name none of them, and a metric defined here (one class, one
registration) gets its requests run and its values into a run's case files, samples and summary."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from flextape_bench.cases import CaseScores, EditCase, ScoreRequest, case_group
from flextape_bench.generation import Decoding
from flextape_bench.metrics import METRICS, Metric, Preparation, Prepared
from flextape_bench.metrics.base import Options
from flextape_bench.runner import RunOptions, run
from flextape_bench.tasks import packaged_tasks_dir
from flextape_bench.tasks.spec import TaskSpec

PACKAGE = Path(__file__).parents[2] / "flextape_bench"
NAME = "subject_echo"


class SubjectEcho(Metric, Preparation):
    """Scores the edit prompt with the subject's name, and generates two greedy tokens after it."""

    def __init__(self) -> None:
        self.preparation = self

    def prepare(
        self, spec: TaskSpec, cases: Sequence[EditCase], metrics: Sequence[Metric], options: Options
    ) -> Prepared:
        out = [
            EditCase(c.case_id, c.rewrite, c.probes, c.generation_prompts, {**c.queries, NAME: c.rewrite.subject})
            for c in cases
        ]
        return Prepared(out, summary={"subject_echo_cases": len(out)})

    def score_requests(self, case: EditCase) -> list[ScoreRequest]:
        return [ScoreRequest(case.rewrite.edit_prompt, (case.queries[NAME],), case_group(case.case_id))]

    def decoding(self, spec: TaskSpec) -> Decoding | None:
        return Decoding(max_new_tokens=2, do_sample=False)

    def text_requests(self, case: EditCase) -> tuple[tuple[str, ...], int]:
        return (case.rewrite.edit_prompt,), 1

    def case(self, case: EditCase, pre: CaseScores, post: CaseScores) -> dict[str, Any]:
        (before,), (after,) = pre.generation, post.generation
        return {
            "nll_pre": before[0].sum_nll,
            "nll_post": after[0].sum_nll,
            "text_pre": pre.texts[0][0],
            "text_post": post.texts[0][0],
        }

    def aggregate(self, per_case: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return {"n_cases": len(per_case), "nll_pre": sum(c["nll_pre"] for c in per_case) / len(per_case)}

    def samples(self, record: dict[str, Any]) -> Iterable[dict[str, Any]]:
        yield {"case_id": record["case_id"], "kind": NAME, "text": record["metrics"][NAME]["text_pre"]}


METRICS.add(NAME, SubjectEcho(), description="test plugin: the subject's name after the edit prompt")


def _sources(path: Path) -> str:
    return "\n".join(p.read_text() for p in ([path] if path.is_file() else sorted(path.rglob("*.py"))))


def test_the_runner_and_the_cli_name_no_metric():
    runner = _sources(PACKAGE / "runner.py")
    cli = "\n".join(_sources(p) for p in (PACKAGE / "cli.py", PACKAGE / "cli") if p.exists())
    assert METRICS.names() and cli
    for name in METRICS.names():
        assert not re.search(rf"\b{name}\b", runner), f"runner.py names the metric {name}"
        assert not re.search(rf"""["']{name}["']""", cli), f"the cli names the metric {name}"


def test_a_metric_added_outside_the_runner_is_prepared_asked_and_summarized(gemma, tmp_path, data_dir):
    (tmp_path / "tasks").mkdir()
    base = packaged_tasks_dir() / "seesaw_cf_P19_P101_eff.yaml"
    (tmp_path / "tasks" / "echo.yaml").write_text(f"include: {base}\ntask: echo_eff\nmetrics: [efficacy, {NAME}]\n")
    options = RunOptions(
        model="gemma3-270m",
        tasks=["echo_eff"],
        limit=2,
        data_dir=data_dir,
        include_paths=[tmp_path / "tasks"],
        output=tmp_path / "out",
        cache=tmp_path / "cache",
    )
    run_dir, summary = run(options, gemma)
    task = summary["tasks"]["echo_eff"]
    assert task[NAME]["n_cases"] == 2 and task["subject_echo_cases"] == 2 and task["efficacy"]["n_cases"] == 2
    records = [json.loads(p.read_text()) for p in sorted((run_dir.path / "echo_eff").glob("case_*.json"))]
    assert len(records) == 2
    for record in records:
        values = record["metrics"][NAME]
        assert values["nll_pre"] == pytest.approx(values["nll_post"]) and values["nll_pre"] > 0  # editor none
        assert values["text_pre"] == values["text_post"] != ""  # greedy, unedited
        assert record["pre"]["generation"][0]["sum_nll"] == [values["nll_pre"]]
        assert record["pre"]["texts"] == [[values["text_pre"]]]
    assert task[NAME]["nll_pre"] == pytest.approx(sum(r["metrics"][NAME]["nll_pre"] for r in records) / 2)
    lines = [json.loads(line) for line in (run_dir.path / "echo_eff" / "samples.jsonl").read_text().splitlines()]
    assert [line["text"] for line in lines if line["kind"] == NAME] == [r["metrics"][NAME]["text_pre"] for r in records]
