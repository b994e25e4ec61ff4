"""Choose an editor's hyperparameters on the tuning split, never on cases a reported table uses.

    python benchmarks/tune_editor.py --editor ft --grid layers=[4],[8],[12] --grid norm_constraint=5e-5,5e-4

The tuning split is MEND's training split (`flextape_bench.editors.mend_train.split_requests`): edits from each
task's cases after its first `--holdout` (100), none about a subject of those first cases, shuffled under `--seed`;
the first `--edits` of them are used. Every grid point edits them in one batch (`--hparams` fixed values apply to
all) and reports efficacy: the share of edits whose new target is more probable than the true one after the edit
prompt, before and after the edit.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import torch
from tabulate import tabulate

from flextape_bench import models
from flextape_bench.editors import parse_overrides
from flextape_bench.editors.mend_train import split_requests
from flextape_bench.editors.nll import target_nll
from flextape_bench.runner import RunOptions, build_editor, prepare_tasks
from flextape_bench.weights import applied_delta

REPO = Path(__file__).resolve().parents[1]


@torch.no_grad()
def efficacy(adapter, requests) -> float:
    """Share of requests with p(target_new) > p(target_true) after the edit prompt."""
    prompts = [r.prompt.replace("{}", r.subject) for r in requests]
    new = target_nll(adapter, prompts, [r.target_new for r in requests])
    true = target_nll(adapter, prompts, [r.target_true for r in requests])
    return float((new < true).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=models.DEFAULT_MODEL)
    parser.add_argument("--editor", required=True)
    parser.add_argument("--tasks", default="seesaw_eff")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "seesaw_cf")
    parser.add_argument("--holdout", type=int, default=100)
    parser.add_argument("--edits", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hparams", action="append", default=[], help="KEY=VALUE fixed for every grid point")
    parser.add_argument("--grid", action="append", default=[], help="KEY=V1,V2,... (lists as [a,b])")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    grid = {}
    for item in args.grid:
        key, _, values = item.partition("=")
        grid[key] = [parse_overrides([f"{key}={v}"])[key] for v in _split(values)]
    options = RunOptions(
        model=args.model,
        editor=args.editor,
        tasks=args.tasks.split(","),
        data_dir=args.data_dir,
        seed=args.seed,
        hparams=args.hparams,
    )
    tasks = prepare_tasks(options)
    adapter = models.load(options.model, options.device, options.dtype, options.max_memory, options.offload_folder)
    requests = split_requests({t.spec.task: t.cases for t in tasks}, args.holdout, 0, args.seed).train[: args.edits]
    weights = adapter.weights_fingerprint()
    before = efficacy(adapter, requests)
    rows = []
    for values in itertools.product(*grid.values()):
        point = dict(zip(grid, values))
        pairs = args.hparams + [f"{k}={json.dumps(v)}" for k, v in point.items()]
        editor = build_editor(RunOptions(**{**vars(options), "hparams": pairs}), adapter, weights)
        started = time.time()
        with applied_delta(adapter.model, editor.compute_delta(requests)):
            after = efficacy(adapter, requests)
        rows.append(
            {
                **point,
                "edits": len(requests),
                "efficacy_pre": before,
                "efficacy_post": after,
                "seconds": round(time.time() - started, 1),
            }
        )
        print(rows[-1], flush=True)
    print(tabulate(rows, headers="keys", tablefmt="github"))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def _split(values: str) -> list[str]:
    """ "[4],[8],1e-3" -> ["[4]", "[8]", "1e-3"]: commas inside brackets stay."""
    parts, depth, current = [], 0, ""
    for ch in values:
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [*parts, current] if current else parts


if __name__ == "__main__":
    main()
