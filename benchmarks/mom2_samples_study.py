"""How MEMIT's and AlphaEdit's results move with the number of key-statistics samples (`mom2_n_samples`).

    python benchmarks/mom2_samples_study.py --n-samples 256,1024,4096 --output /tmp/mom2_study

Runs the harness itself (`flextape_bench.runner.run`) on tuning cases of a pair task: positions `--start` to
`--start + --cases - 1` of its data file (default 100-119 of seesaw_cf_P19_P101: after the first 100, which
reported tables use), edited in one batch, with the statistics of the offline `model` corpus
(`mom2_max_tokens` tokens per text, the same for every point). Reports efficacy, probe shift and the female and
male probe shifts per editor and sample count.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tabulate import tabulate

from flextape_bench import models
from flextape_bench.runner import RunOptions, run

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=models.DEFAULT_MODEL)
    parser.add_argument("--editors", default="memit,alphaedit")
    parser.add_argument("--task", default="seesaw_cf_P19_P101")
    parser.add_argument("--start", type=int, default=100)
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--n-samples", default="256,1024,4096")
    parser.add_argument("--max-tokens", type=int, default=64, help="mom2_max_tokens of every point")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "seesaw_cf")
    parser.add_argument("--output", type=Path, required=True, help="results root of the runs")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()

    samples = {args.task: list(range(args.start, args.start + args.cases))}
    adapter = models.load(args.model, "cpu", "auto")
    rows = []
    for n in [int(v) for v in args.n_samples.split(",")]:
        for editor in args.editors.split(","):
            hparams = ["mom2_dataset=model", f"mom2_n_samples={n}", f"mom2_max_tokens={args.max_tokens}"]
            options = RunOptions(
                model=args.model,
                editor=editor,
                tasks=[args.task],
                samples=samples,
                hparams=hparams,
                data_dir=args.data_dir,
                output=args.output,
            )
            started = time.time()
            _, summary = run(options, adapter=adapter)
            result = summary["tasks"][args.task]
            groups = result["gender_shift"]["groups"]
            rows.append(
                {
                    "editor": editor,
                    "mom2_n_samples": n,
                    "efficacy_pre": result["efficacy"]["pre"],
                    "efficacy_post": result["efficacy"]["post"],
                    "probe_shift": result["probe_delta"]["shift"],
                    "female_shift": groups["female"]["shift"],
                    "male_shift": groups["male"]["shift"],
                    "seconds": round(time.time() - started),
                }
            )
            print(rows[-1], flush=True)
            if args.json:
                args.json.write_text(json.dumps(rows, indent=1))
    print(tabulate(rows, headers="keys", tablefmt="github", floatfmt=".3f"))


if __name__ == "__main__":
    main()
