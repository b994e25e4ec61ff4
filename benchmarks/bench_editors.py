"""Seconds per edit and peak memory of every editor on the embedded model, per batch size, and key statistics cold
versus cached.

    python benchmarks/bench_editors.py --edits 1,10,100 --samples 128 [--editors memit] [--hparams KEY=VALUE]

For each batch size N, the first N cases of seesaw_cf_P103_eff are edited in one batch per editor (ROME applies
them one after another inside the batch, as the paper does). Statistics use the offline corpus `model` (text
sampled from the model) in a fresh cache directory, so the first call is cold and the second reads the cache;
`--statistics-cache DIR` keeps them in DIR instead (cold only the first time). MEND uses the
checkpoint that `flextape-bench train-mend` saved in the user cache (skipped, with a note, when there is none);
its training time per step is read from the checkpoint. Each timed step's peak memory is reported: on the CPU the
process's peak resident set size (sampled), on CUDA torch's peak allocation; both include the model's weights.
`--stages` also reports, per batch, the stages of ROME, MEMIT and AlphaEdit apart (value optimisation, keys, the
outputs at the subject): their calls, seconds and the highest peak of a call, to show which one sets the peak.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from tabulate import tabulate

from flextape_bench.cases import EditRequest
from flextape_bench.editors import keyed, memit, rome
from flextape_bench.editors.mend import MENDEditor
from flextape_bench.errors import UserError
from flextape_bench.memory import PeakMemory, used_bytes
from flextape_bench.models import DEFAULT_MODEL, load
from flextape_bench.paths import cache_dir
from flextape_bench.runner import RunOptions, build_editor
from flextape_bench.tasks import TaskIndex, load_cases, resolve_data_file

REPO = Path(__file__).resolve().parents[1]
EDITORS = ("ft", "mend", "rome", "memit", "alphaedit")
STAGES = {  # (module, function) -> the stage it is
    (memit, "optimize_values"): "value optimisation",
    (rome, "optimize_values"): "value optimisation",
    (keyed, "at_subject_by_type"): "keys",
    (rome, "at_subject"): "keys",
    (memit, "at_subject"): "outputs at the subject",
}


@contextlib.contextmanager
def stage_peaks(device: torch.device, label: str, rows: list[dict[str, object]]) -> Iterator[None]:
    """While open, time every call of the editors' stages (STAGES) and take its peak memory; on exit, append one row
    per stage called: calls, seconds in all, the highest peak of a call."""
    seen: dict[str, dict[str, Any]] = {}

    def timed(stage: str, function: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            with PeakMemory(device) as memory:
                result = function(*args, **kwargs)
            entry = seen.setdefault(stage, {"calls": 0, "seconds": 0.0, "peak GiB": 0.0})
            entry["calls"] += 1
            entry["seconds"] += time.perf_counter() - started
            entry["peak GiB"] = max(entry["peak GiB"], memory.peak / 2**30)
            return result

        return call

    originals = {(module, name): getattr(module, name) for module, name in STAGES}
    try:
        for (module, name), stage in STAGES.items():
            setattr(module, name, timed(stage, originals[module, name]))
        yield
    finally:
        for (module, name), function in originals.items():
            setattr(module, name, function)
        rows.extend(
            {"what": f"{label}, {stage} ({entry.pop('calls')} calls)", **entry} for stage, entry in seen.items()
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "seesaw_cf")
    parser.add_argument("--edits", default="4", help="batch sizes, comma-separated (first cases of seesaw_cf_P103_eff)")
    parser.add_argument("--editors", default=",".join(EDITORS), help="editors to time, comma-separated")
    parser.add_argument("--hparams", action="append", default=[], help="KEY=VALUE for every editor, as in a run")
    parser.add_argument("--statistics-cache", type=Path, help="keep the key statistics here (default: a fresh folder)")
    parser.add_argument("--samples", type=int, default=128, help="corpus samples for the key statistics")
    parser.add_argument("--stages", action="store_true", help="also each stage's seconds and peak, per batch")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    sizes = [int(n) for n in args.edits.split(",")]
    spec = TaskIndex().spec("seesaw_cf_P103_eff")
    cases = load_cases(spec, resolve_data_file(spec, args.data_dir, cache_dir()), max(sizes))
    requests = [EditRequest.from_rewrite(c.rewrite, c.case_id) for c in cases]
    adapter = load(DEFAULT_MODEL)
    device, weights = adapter.input_device, adapter.weights_fingerprint()
    before = used_bytes(device)
    corpus = ["mom2_dataset=model", f"mom2_n_samples={args.samples}", "mom2_max_tokens=64"]
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as fresh:
        cache = args.statistics_cache or Path(fresh)
        for name in args.editors.split(","):
            hparams = (corpus if name not in ("ft", "mend") else []) + args.hparams
            options = RunOptions(editor=name, cache=cache_dir() if name == "mend" else cache, hparams=hparams)
            try:
                editor = build_editor(options, adapter, weights)
            except UserError as exc:
                rows.append({"what": f"{name}: skipped ({exc})"})
                continue
            if isinstance(editor, MENDEditor):
                training = editor.metadata["record"]
                rows.append({"what": f"mend training: {training['steps']} steps", "seconds": training["seconds"]})
            if hasattr(editor, "statistics"):
                for label in ("cold", "cached"):
                    started = time.perf_counter()
                    with PeakMemory(device) as memory:
                        editor.statistics()
                    rows.append(
                        {
                            "what": f"{name} key statistics ({label})",
                            "seconds": time.perf_counter() - started,
                            "peak GiB": memory.peak / 2**30,
                        }
                    )
            if hasattr(editor, "templates"):
                _ = editor.templates  # sampled once per editor, not per edit
            for size in sizes:
                torch.manual_seed(0)
                stages: list[dict[str, object]] = []
                started = time.perf_counter()
                with (
                    PeakMemory(device) as memory,
                    stage_peaks(device, f"{name}: {size} edits", stages) if args.stages else contextlib.nullcontext(),
                ):
                    editor.compute_delta(requests[:size])
                seconds = time.perf_counter() - started
                rows.append(
                    {
                        "what": f"{name}: {size} edits",
                        "seconds": seconds,
                        "s/edit": seconds / size,
                        "peak GiB": memory.peak / 2**30,
                    }
                )
                rows.extend(stages)
                print(*rows[-1 - len(stages) :], sep="\n", flush=True)
    print(
        f"{DEFAULT_MODEL} on {device}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
        f"statistics over {args.samples} sampled texts of 64 tokens; memory with the model loaded "
        f"{before / 2**30:.2f} GiB, peak per step: {PeakMemory.describe(device)}"
    )
    print(tabulate(rows, headers="keys", tablefmt="github", floatfmt=".1f", missingval=""))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
