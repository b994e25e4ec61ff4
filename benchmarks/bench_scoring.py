"""Probes scored per second on the embedded model (Gemma 3 270M) for a whole pair task, four ways.

A probe instance is one `ScoreRequest` of one case: a prompt scored with the rewrite's two targets. Many instances
repeat across cases (the same probe prompt with the same targets); the runner scores each distinct one once
(`cases.RequestOwners`), so both rates are reported: instances per second and distinct scorings per second.

- harness: `Scorer.score` on the distinct requests, as the runner calls it (packed, length-batched, LM head only at
  scored positions);
- naive: one forward pass per prompt + " " + target string with full-vocabulary logits at every position, as the
  upstream code did; slow, so it is timed on the first `--naive-probes` probes and reported per probe;
- floor: only the decoder body's forward pass over exactly the padded batches the harness feeds, built beforehand
  by `Scorer.batches` and `Scorer.batch_inputs` (no tokenization, no LM head): the harness cannot beat it;
- head floor: the same body pass plus the LM head's logits at the scored positions only (each distinct position
  once, no normalisation): what exact scoring needs at least, so harness / head floor is what is left to gain.

Each method is warmed up once on a small slice, then timed `--repeats` times under `torch.inference_mode()`; the
best (shortest) run is reported, the least disturbed by other processes. Its CPU use (process CPU seconds per wall
second) is printed too: well under the torch thread count means other processes competed for the cores, and small
forward passes (naive) suffer most. The harness's NLLs are checked against the naive ones on the probes both scored.
Each method's peak memory is reported too: on the CPU the process's peak resident set size (sampled), on CUDA
torch's peak allocation; both include the model's weights (the memory before timing is printed first).

    python benchmarks/bench_scoring.py [--task seesaw_cf_P21_P101] [--cases N] [--naive-probes N] [--json PATH]
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from tabulate import tabulate

import flextape_bench.paths
from flextape_bench.cases import RequestOwners, ScoreRequest, score_requests
from flextape_bench.memory import PeakMemory, used_bytes
from flextape_bench.models import DEFAULT_MODEL, ModelAdapter, load
from flextape_bench.scoring import Scorer
from flextape_bench.tasks import TaskIndex, load_cases, resolve_data_file
from flextape_bench.tokenization import encode_continuation, join

REPO = Path(__file__).resolve().parents[1]
TASK = "seesaw_cf_P21_P101"
NLL_TOLERANCE = 1e-3

T = TypeVar("T")


def load_requests(data_dir: Path, task: str, cases: int | None) -> tuple[list[ScoreRequest], list[ScoreRequest]]:
    """The score requests (edit prompt, then probes) of the task's first `cases` cases (all by default): every
    instance, and the distinct ones the runner scores (grouped by `RequestOwners` over the whole data file)."""
    spec = TaskIndex().spec(task)
    path = resolve_data_file(spec, data_dir, flextape_bench.paths.cache_dir())
    every = load_cases(spec, path, None)
    owners = RequestOwners.of(every)
    instances = [request for case in every[:cases] for request in score_requests(case, owners)]
    return instances, owners.complete(instances)


def naive_nll(adapter: ModelAdapter, request: ScoreRequest) -> tuple[float, ...]:
    """Per target: a full forward of prompt + " " + target, full-vocabulary log-softmax, summed NLL of its tokens."""
    sums = []
    for target in request.targets:
        inputs = adapter.tokenizer(join(request.prompt, target), return_tensors="pt").to(adapter.input_device)
        logprobs = torch.log_softmax(adapter.model(**inputs).logits[0].float(), dim=-1)
        continuation = encode_continuation(adapter.tokenizer, request.prompt, target)
        start = len(continuation.context) - 1  # the position predicting the target's first token
        labels = torch.tensor(continuation.target, device=logprobs.device)
        sums.append(-float(logprobs[start : start + len(labels)].gather(-1, labels[:, None]).sum()))
    return tuple(sums)


def timed(run: Callable[[], T], probes: int, repeats: int, device: torch.device) -> tuple[dict[str, float], T]:
    """The fastest of `repeats` calls of `run` over `probes` probes: seconds, probes/s, CPU use, and the peak memory
    over all calls (GiB); and its result."""
    best: tuple[float, float, T] | None = None
    with PeakMemory(device) as memory:
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            result = run()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if best is None or wall < best[0]:
                best = (wall, cpu / wall, result)
    assert best is not None
    seconds, cpu_use, result = best
    return {
        "probes": probes,
        "seconds": seconds,
        "probes_per_s": probes / seconds,
        "cpu_use": cpu_use,
        "peak_gib": memory.peak / 2**30,
    }, result


def parse_args() -> argparse.Namespace:
    default_batch_tokens = inspect.signature(Scorer).parameters["batch_tokens"].default
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=REPO.parent / "shared" / "seesaw_cf",
        help="folder holding the Seesaw-CF data files (default: ../shared/seesaw_cf)",
    )
    parser.add_argument("--task", default=TASK, help=f"the task whose probes are scored (default {TASK})")
    parser.add_argument("--cases", type=int, help="only its first N cases (default: all)")
    parser.add_argument("--naive-probes", type=int, default=64, help="probes the naive method is timed on")
    parser.add_argument(
        "--batch-tokens",
        type=int,
        default=default_batch_tokens,
        help=f"scorer batch size in padded tokens (default {default_batch_tokens})",
    )
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per method; the best is reported")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    return parser.parse_args()


def scored_positions(batch: list[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, positions) of a packed batch's distinct scored positions."""
    where = list(dict.fromkeys((b, pos) for b, row in enumerate(batch) for scored in row.scored for pos in scored))
    rows, positions = zip(*where)
    return torch.tensor(rows), torch.tensor(positions)


def main() -> None:
    args = parse_args()
    adapter = load(DEFAULT_MODEL)
    instances, requests = load_requests(args.data_dir, args.task, args.cases)
    subset = requests[: args.naive_probes]
    scorer = Scorer(adapter, batch_tokens=args.batch_tokens)
    batches = scorer.batches(requests)
    inputs = [scorer.batch_inputs(batch) for batch in batches]  # built before timing
    heads = [scored_positions(batch) for batch in batches]
    threads, device = torch.get_num_threads(), adapter.input_device
    print(
        f"model {DEFAULT_MODEL} ({adapter.dtype}, {device}), torch {torch.__version__}, {threads} threads; task "
        f"{args.task}: {args.cases or 'all'} cases, {len(instances)} probe instances = {len(requests)} distinct "
        f"requests in {len(inputs)} batches of <= {args.batch_tokens} tokens; best of {args.repeats} run(s)"
    )
    before = used_bytes(device)
    memory = PeakMemory.describe(device)
    print(f"memory before timing: {before / 2**30:.2f} GiB; peak memory per method: {memory}")

    def run_floor() -> None:
        for batch in inputs:
            adapter.body_hidden(**batch)

    def run_head_floor() -> None:
        for batch, (rows, positions) in zip(inputs, heads):
            hidden = adapter.body_hidden(**batch)
            adapter.layout.head_logits(adapter.model, hidden[rows.to(hidden.device), positions.to(hidden.device)])

    with torch.inference_mode():
        scorer.score(requests[:8])
        naive_nll(adapter, requests[0])
        adapter.body_hidden(**inputs[0])
        methods: dict[str, dict[str, float]] = {}
        methods["harness"], harness = timed(lambda: scorer.score(requests), len(requests), args.repeats, device)
        methods["naive"], naive = timed(
            lambda: [naive_nll(adapter, r) for r in subset], len(subset), args.repeats, device
        )
        methods["head_floor"], _ = timed(run_head_floor, len(requests), args.repeats, device)
        methods["floor"], _ = timed(run_floor, len(requests), args.repeats, device)
    for m in methods.values():
        m["ratio_to_floor"] = methods["floor"]["probes_per_s"] / m["probes_per_s"]
        m["ratio_to_head_floor"] = methods["head_floor"]["probes_per_s"] / m["probes_per_s"]
        m["speedup_over_naive"] = m["probes_per_s"] / methods["naive"]["probes_per_s"]
    instances_per_s = len(instances) / methods["harness"]["seconds"]
    max_diff = max(abs(sc.sum_nll - nll) for scores, nlls in zip(harness, naive) for sc, nll in zip(scores, nlls))

    labels = {
        "harness": "harness (Scorer.score)",
        "naive": f"naive (first {len(subset)} probes)",
        "head_floor": "body + LM head at scored positions (head floor)",
        "floor": "bare forward (floor)",
    }
    columns = [
        "probes",
        "seconds",
        "probes_per_s",
        "ratio_to_floor",
        "ratio_to_head_floor",
        "speedup_over_naive",
        "peak_gib",
    ]
    print()
    print(
        tabulate(
            [[labels[name]] + [m[c] for c in columns] for name, m in methods.items()],
            headers=[
                "method",
                "distinct probes",
                "seconds",
                "distinct probes/s",
                "ratio to floor",
                "ratio to head floor",
                "speed-up over naive",
                "peak memory (GiB)",
            ],
            tablefmt="github",
            floatfmt=".2f",
        )
    )
    print()
    print(
        f"harness: {len(instances)} probe instances in {methods['harness']['seconds']:.1f} s = "
        f"{instances_per_s:.1f} instances/s ({len(requests)} distinct scorings, "
        f"{methods['harness']['probes_per_s']:.1f}/s)"
    )
    print(
        f"CPU use (CPU s per wall s, of {threads} threads): "
        + ", ".join(f"{name} {m['cpu_use']:.2f}" for name, m in methods.items())
    )
    verdict = "OK" if max_diff <= NLL_TOLERANCE else "MISMATCH"
    print(
        f"harness vs naive NLL on {len(subset)} probes ({sum(len(r.targets) for r in subset)} targets): "
        f"max abs diff {max_diff:.2e} ({verdict}, tolerance {NLL_TOLERANCE:g})"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "model": DEFAULT_MODEL,
                    "dtype": str(adapter.dtype),
                    "device": str(adapter.input_device),
                    "torch": torch.__version__,
                    "torch_threads": threads,
                    "task": args.task,
                    "cases": args.cases,
                    "probe_instances": len(instances),
                    "distinct_requests": len(requests),
                    "instances_per_s": instances_per_s,
                    "memory_before_gib": before / 2**30,
                    "memory": memory,
                    "batch_tokens": args.batch_tokens,
                    "batches": len(inputs),
                    "repeats": args.repeats,
                    "methods": methods,
                    "nll_max_abs_diff": max_diff,
                    "nll_tolerance": NLL_TOLERANCE,
                },
                indent=2,
            )
            + "\n"
        )
    if max_diff > NLL_TOLERANCE:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
