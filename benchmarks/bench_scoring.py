"""Probes scored per second on the embedded model (Gemma 3 270M), three ways over the same Seesaw-CF probes.

A probe is one `ScoreRequest`: a prompt scored with the rewrite's two targets.

- harness: `Scorer.score`, the benchmark's packed, length-batched scorer (LM head only at scored positions);
- naive: one forward pass per prompt + " " + target string with full-vocabulary logits at every position, as the
  upstream code did; slow, so it is timed on the first `--naive-probes` probes and reported per probe;
- floor: only the decoder body's forward pass over exactly the padded batches the harness feeds (no tokenization,
  no LM head): the harness cannot beat it.

Each method is warmed up once on a small slice, then timed `--repeats` times under `torch.inference_mode()`; the
best (shortest) run is reported, the least disturbed by other processes (the 1-minute load average before timing is
printed to show them). The harness's NLLs are checked against the naive ones on the probes both scored.

    python benchmarks/bench_scoring.py [--cases N] [--naive-probes N] [--json PATH]
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import time
from pathlib import Path
from typing import Callable, Sequence, TypeVar

import torch
from tabulate import tabulate

import flextape_bench.paths
from flextape_bench.cases import ScoreRequest, score_requests
from flextape_bench.models import DEFAULT_MODEL, ModelAdapter, load
from flextape_bench.scoring import Scorer, _pack, attention_masks
from flextape_bench.tasks import TaskIndex, load_cases, resolve_data_file
from flextape_bench.tokenization import encode_continuation, join

REPO = Path(__file__).resolve().parents[1]
TASK = "seesaw_cf_P19_P101"
NLL_TOLERANCE = 1e-3

Inputs = dict[str, torch.Tensor | dict[str, torch.Tensor]]  # keyword arguments of `ModelAdapter.body_hidden`
T = TypeVar("T")


def load_requests(data_dir: Path, cases: int) -> list[ScoreRequest]:
    """The score requests (edit prompt, then probes) of the task's first `cases` cases."""
    spec = TaskIndex().spec(TASK)
    path = resolve_data_file(spec, data_dir, flextape_bench.paths.cache_dir())
    return [request for case in load_cases(spec, path, cases) for request in score_requests(case)]


def floor_inputs(scorer: Scorer, requests: Sequence[ScoreRequest]) -> list[Inputs]:
    """The padded body inputs `scorer.score(requests)` builds, batch by batch.

    Packing, sorting, batching and the masks use the scorer's own functions; the padding repeats the lines of
    `Scorer._score_batch`, which builds these tensors inline (`recorded_inputs` checks that they still agree).
    """
    adapter, device = scorer.adapter, scorer.adapter.input_device
    pad = adapter.tokenizer.pad_token_id or 0
    rows = [row for i, request in enumerate(requests) for row in _pack(adapter, i, request)]
    rows.sort(key=lambda row: len(row.tokens))
    batches = []
    for batch in scorer._batches(rows):
        length = max(len(row.tokens) for row in batch)

        def padded(values: tuple[int, ...], fill: int) -> list[int]:
            return list(values) + [fill] * (length - len(values))

        tokens = torch.tensor([padded(r.tokens, pad) for r in batch], device=device)
        segments = torch.tensor([padded(r.segments, -1) for r in batch], device=device)
        positions = torch.tensor([padded(r.positions, 0) for r in batch], device=device)
        mask = attention_masks(adapter.model.config, segments, positions, adapter.dtype)
        batches.append({"input_ids": tokens, "attention_mask": mask, "position_ids": positions})
    return batches


def recorded_inputs(scorer: Scorer, requests: Sequence[ScoreRequest]) -> list[Inputs]:
    """The body inputs `scorer.score(requests)` actually feeds, recorded by wrapping `adapter.body_hidden`."""
    adapter, recorded = scorer.adapter, []
    body_hidden = adapter.body_hidden

    def record(**inputs: torch.Tensor) -> torch.Tensor:
        recorded.append(inputs)
        return body_hidden(**inputs)

    adapter.body_hidden = record  # type: ignore[method-assign]
    try:
        scorer.score(requests)
    finally:
        del adapter.body_hidden
    return recorded


def same(a: object, b: object) -> bool:
    """Equal nests of lists, dicts and tensors (dtypes, shapes and values)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)


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


def best_of(run: Callable[[], T], repeats: int) -> tuple[float, T]:
    """Shortest wall-clock seconds of `repeats` calls of `run`, and the last call's result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def parse_args() -> argparse.Namespace:
    default_batch_tokens = inspect.signature(Scorer).parameters["batch_tokens"].default
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "seesaw_cf",
                        help="folder holding the Seesaw-CF data files (default: ../shared/seesaw_cf)")
    parser.add_argument("--cases", type=int, default=10, help=f"first N cases of {TASK} (default 10: 1082 probes)")
    parser.add_argument("--naive-probes", type=int, default=64, help="probes the naive method is timed on")
    parser.add_argument("--batch-tokens", type=int, default=default_batch_tokens,
                        help=f"scorer batch size in padded tokens (default {default_batch_tokens})")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per method; the best is reported")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    adapter = load(DEFAULT_MODEL)
    requests = load_requests(args.data_dir, args.cases)
    subset = requests[: args.naive_probes]
    scorer = Scorer(adapter, batch_tokens=args.batch_tokens)
    inputs = floor_inputs(scorer, requests)

    def run_floor() -> None:
        for batch in inputs:
            adapter.body_hidden(**batch)

    with torch.inference_mode():
        warmup = requests[:8]
        if not same(recorded_inputs(scorer, warmup), floor_inputs(scorer, warmup)):
            raise SystemExit("floor_inputs no longer builds what Scorer feeds the model: update it to match "
                             "Scorer._score_batch")
        naive_nll(adapter, requests[0])
        adapter.body_hidden(**inputs[0])
        load_average = os.getloadavg()[0]
        print(f"model {DEFAULT_MODEL} ({adapter.dtype}, {adapter.input_device}), torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads, load average {load_average:.2f}; task {TASK}: {args.cases} cases, "
              f"{len(requests)} probes in {len(inputs)} batches of <= {args.batch_tokens} tokens; "
              f"best of {args.repeats} run(s)")
        harness_s, harness = best_of(lambda: scorer.score(requests), args.repeats)
        naive_s, naive = best_of(lambda: [naive_nll(adapter, request) for request in subset], args.repeats)
        floor_s, _ = best_of(run_floor, args.repeats)

    max_diff = max(
        abs(score.sum_nll - nll) for scores, nlls in zip(harness, naive) for score, nll in zip(scores, nlls)
    )
    timings = {
        "harness": (len(requests), harness_s), "naive": (len(subset), naive_s), "floor": (len(requests), floor_s)
    }
    rates = {name: probes / secs for name, (probes, secs) in timings.items()}
    methods = {
        name: {
            "probes": probes,
            "seconds": secs,
            "probes_per_s": rates[name],
            "ratio_to_floor": rates["floor"] / rates[name],
            "speedup_over_naive": rates[name] / rates["naive"],
        }
        for name, (probes, secs) in timings.items()
    }
    labels = {"harness": "harness (Scorer.score)", "naive": f"naive (first {len(subset)} probes)",
              "floor": "bare forward (floor)"}
    print()
    print(tabulate(
        [[labels[name], m["probes"], m["seconds"], m["probes_per_s"], m["ratio_to_floor"], m["speedup_over_naive"]]
         for name, m in methods.items()],
        headers=["method", "probes", "seconds", "probes/s", "ratio to floor", "speed-up over naive"],
        tablefmt="github", floatfmt=".2f",
    ))
    print()
    verdict = "OK" if max_diff <= NLL_TOLERANCE else "MISMATCH"
    print(f"harness vs naive NLL on {len(subset)} probes ({sum(len(r.targets) for r in subset)} targets): "
          f"max abs diff {max_diff:.2e} ({verdict}, tolerance {NLL_TOLERANCE:g})")
    if args.json:
        args.json.write_text(json.dumps({
            "model": DEFAULT_MODEL, "dtype": str(adapter.dtype), "device": str(adapter.input_device),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "load_average": load_average,
            "task": TASK, "cases": args.cases, "batch_tokens": args.batch_tokens, "batches": len(inputs),
            "repeats": args.repeats, "methods": methods, "nll_max_abs_diff": max_diff, "nll_tolerance": NLL_TOLERANCE,
        }, indent=2) + "\n")
    if max_diff > NLL_TOLERANCE:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
