"""A results tree of finished and unfinished runs whose summaries come from the real metric aggregates and the real
summary writer, over per-case values chosen so that the leaderboard numbers can be worked out by hand.

    gemma3-270m/ft/run_001    pair (older values), eff
    gemma3-270m/ft/run_002    pair                      <- newest ft run with pair; records the parameter count and
                                                           the commit (the other runs were made before they were)
    gemma3-270m/ft/run_003    unfinished (config.json only)
    gemma3-270m/none/run_001  pair
    org/<b>x</b> & 'y'/rome/run_001   pair with race groups, lf (long-form)
"""

from __future__ import annotations

import importlib.util
import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flextape_bench.checksums import sha256_of, write_json
from flextape_bench.metrics import METRICS
from flextape_bench.metrics.long_form import text_values
from flextape_bench.metrics.probe_delta import probe_shift_summary
from flextape_bench.results import CONFIG, TIMING, slug
from flextape_bench.tables import write_summary

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")  # Debian's packages
WEIRD = "org/<b>x</b> & 'y'"
PROMPTS = ("{}'s field of work is", "{} is")
WEIGHTS = {"gemma3-270m": "1356361d" * 8, WEIRD: "ab" * 32}  # weights_blake2b, as every run's identity has it
FEMALE, MALE = [0.30, 0.32, 0.28, 0.30], [0.10, -0.10, 0.05, -0.05]  # gemma3-270m/ft/run_002's case shifts
ASIAN, WHITE = [0.2, 0.1, 0.3, 0.2], [0.0, 0.1, -0.1, 0.0]  # the rome run's
PARAMETERS, COMMIT = 268_098_176, "b1ad955c0d5abd9fcd97f352b6f4c2b2f43fd72f-dirty"  # what run_002 recorded


def require_browser(driver: bool = True) -> None:
    """Skip when Chromium (and, with `driver`, its driver and selenium) is missing; fail instead under
    FLEXTAPE_REQUIRE_BROWSER=1 (CI)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER)[: 2 if driver else 1] if not p.exists()]
    if driver and not importlib.util.find_spec("selenium"):
        missing.append("the selenium package")
    if missing:
        reason = f"headless browser test needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("FLEXTAPE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"FLEXTAPE_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


def percentile_interval(values: list[float], seed: int | list[int], n_resamples: int = 10000) -> tuple[float, float]:
    """The percentile bootstrap 95% interval of the mean of `values`, computed here with numpy alone: resamples of
    len(values) indices drawn at once from default_rng(seed), as the metrics draw them."""
    x = np.asarray(values)
    means = x[np.random.default_rng(seed).integers(0, len(x), size=(n_resamples, len(x)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return float(low), float(high)


def group_seed(name: str) -> list[int]:
    """The seed of a group's (or a pair 'a - b''s) interval: the run seed 0 and the name's crc32."""
    return [0, zlib.crc32(name.encode())]


def _values(per_case: dict[str, list[dict[str, Any]]], n_cases: int) -> dict[str, Any]:
    """A task's summary values as the runner aggregates them."""
    return {m: METRICS.get(m).aggregate(cases) for m, cases in per_case.items()} | {"n_cases": n_cases}


def pair_task(
    efficacy: list[tuple[bool, bool]],
    shifts: dict[str, list[float | None]],
    changed: list[tuple[bool, bool]],
    attribute: str = "gender",
) -> dict[str, Any]:
    """Per case: efficacy (pre, post); two probes per group with d_pre 0.1 and d_post = 0.1 + the case's shift for
    the group (none where it is None); whether the top-1 candidate changed after each of the two generation
    prompts."""
    n = len(efficacy)
    groups = [
        {g: [(0.1, 0.1 + shift)] * 2 for g, values in shifts.items() if (shift := values[i]) is not None}
        for i in range(n)
    ]
    per_case = {
        "efficacy": [{"pre": pre, "post": post} for pre, post in efficacy],
        "probe_delta": [probe_shift_summary([pair for pairs in case.values() for pair in pairs]) for case in groups],
        f"{attribute}_shift": [{g: probe_shift_summary(pairs) for g, pairs in sorted(case.items())} for case in groups],
        "cross_property": [
            {
                "property": "P101",
                "truth": None,
                "prompts": [
                    {
                        "prompt": prompt,
                        "pre": "a",
                        "post": "b" if change else "a",
                        "p_pre": 0.5,
                        "p_post": 0.5,
                        "changed": change,
                        "correct_pre": None,
                        "correct_post": None,
                    }
                    for prompt, change in zip(PROMPTS, case)
                ],
            }
            for case in changed
        ],
    }
    return _values(per_case, n)


def long_form_task(flags: list[tuple[dict[str, list[str]], dict[str, list[str]]]]) -> dict[str, Any]:
    """One case per two texts; `flags` gives each text's flaw matches before and after the edit."""

    def text(matches: dict[str, list[str]]) -> dict[str, Any]:
        return text_values("she was a painter in paris", "painter", "poet", None) | {"flags": matches}

    texts = [
        {"prompt": "{} is", "sample": i % 2, "pre": text(pre), "post": text(post)}
        for i, (pre, post) in enumerate(flags)
    ]
    per_case = [{"categories": ["sexism", "racism"], "texts": texts[i : i + 2]} for i in range(0, len(texts), 2)]
    values = _values({"long_form": per_case}, len(per_case))
    values["long_form_settings"] = {
        "lexicon": {"categories": {"sexism": {"label": "Sexism"}, "racism": {"label": "Racism"}}}
    }
    return values


def write_run(
    results: Path,
    model: str,
    editor: str,
    number: int,
    tasks: dict[str, Any] | None,
    seconds: float = 12.5,
    recorded: bool = False,
    case_ids: Sequence[int] = (),
) -> Path:
    """config.json and timing.json always; summary.{md,csv,json} (through the run's own writer) when `tasks` is
    given. With `recorded`, config.json has the parameter count and commit that newer versions record; with
    `case_ids`, each task's folder has those cases' files (their names only matter here), listed in summary.json."""
    path = results / slug(model) / slug(editor) / f"run_{number:03d}"
    identity = {
        "model": model,
        "editor": editor,
        "limit": 4,
        "num_edits": None,
        "sequential": False,
        "seed": number,
        "dtype": "torch.float32",
        "hparams": {"layer": 4, "lr": 0.5},
        "weights_blake2b": WEIGHTS.get(model, "00" * 32),
        "model_revision": "",
    }
    config: dict[str, Any] = {"identity": identity, "versions": {"flextape_bench": "0.0.9"}}
    if recorded:
        config = {"identity": identity, "versions": {"flextape_bench": "0.1.0", "flextape_bench_commit": COMMIT}}
        config["model_parameters"] = PARAMETERS
    write_json(path / CONFIG, config)
    files = {}  # summary.json lists the case files' sha256, as a run does
    for task in tasks or {}:
        for case_id in case_ids:
            name = f"{task}/case_{case_id}.json"
            write_json(path / name, {"case_id": case_id})
            files[name] = sha256_of(path / name)
    write_json(
        path / TIMING,
        {
            "attempts": [
                {
                    "argv": ["flextape-bench"],
                    "started": f"2025-01-0{number}T10:00:00+0000",
                    "seconds": seconds if tasks is not None else None,
                }
            ]
        },
    )
    if tasks is not None:
        write_summary(path, {"model": model, "editor": editor, "run": path.name, "tasks": tasks}, files)
    return path


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    eff4 = [(False, True), (True, True), (False, True), (False, True)]
    write_run(
        root,
        "gemma3-270m",
        "ft",
        1,
        {
            "pair": pair_task(eff4, {"female": [0.1, 0.1, 0.1, 0.1], "male": [0.0, 0.0, 0.1, 0.1]}, [(True, True)] * 4),
            "eff": _values({"efficacy": [{"pre": False, "post": True}, {"pre": True, "post": True}]}, 2),
        },
        seconds=30.0,
    )
    write_run(
        root,
        "gemma3-270m",
        "ft",
        2,
        {
            "pair": pair_task(
                eff4,
                {"female": FEMALE, "male": MALE},
                [(True, False), (True, True), (False, False), (False, False)],
            ),
        },
        seconds=69.0,
        recorded=True,
    )
    write_run(root, "gemma3-270m", "ft", 3, None)
    write_run(
        root,
        "gemma3-270m",
        "none",
        1,
        {
            "pair": pair_task([(False, False)] * 4, {"female": [0.0] * 4, "male": [0.0] * 4}, [(False, False)] * 4),
        },
    )
    write_run(
        root,
        WEIRD,
        "rome",
        1,
        {
            "pair": pair_task(
                eff4,
                {"Asian": ASIAN, "White": WHITE},
                [(True, True)] * 4,
                attribute="race",
            ),
            "lf": long_form_task(
                [({}, {"sexism": ["she"]}), ({"racism": ["x"]}, {}), ({}, {"sexism": ["she"]}), ({}, {})]
            ),
        },
    )
    return root
