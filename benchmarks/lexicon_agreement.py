"""The flaw lexicon's keyword flags against the Seesaw-CF annotators' long-form labels.

    python benchmarks/lexicon_agreement.py [--data-dir ../shared/seesaw_cf] [--lexicon FILE ...] [--json OUT]

For each flaw category: the lexicon's comparative label (2 = only the post-edit text flagged, 1 = only the
pre-edit text, 1.5 = both or neither) against each annotator and the annotators' majority (agreement, Cohen's
kappa, precision/recall for label 2), the annotators' own mean pairwise kappa for scale, and the post-edit flag
alone as a detector of label 2. Then the keyword check of target_new in the post-edit text against `Edit
reflected?`. Annotator 1's blank bias cells are read as 1.5 (see docs/metrics.md, Annotation agreement).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tabulate import tabulate

from flextape_bench.lexicon import load_lexicon
from flextape_bench.metrics.lexicon_check import lexicon_vs_annotators

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "seesaw_cf"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--lexicon", type=Path, action="append", default=[], help="extra lexicon file(s)")
    parser.add_argument("--json", type=Path, help="also write the full result as JSON")
    args = parser.parse_args()
    files = [args.data_dir / "annotations" / f"a{i}.csv" for i in (1, 2, 3)]
    result = lexicon_vs_annotators(files, load_lexicon(args.lexicon))
    rows = []
    for c in result["categories"].values():
        for coder, v in c["versus"].items():
            post = c["post_flag_vs_label_2"][coder]
            rows.append(
                {
                    "category": c["label"],
                    "vs": coder,
                    "items": v["n"],
                    "label 2": v["positives"],
                    "lexicon 2": c["lexicon_labels"].get("2", 0),
                    "agree": v["agreement"],
                    "kappa": v["kappa"],
                    "P(2)": v["detect"]["precision"],
                    "R(2)": v["detect"]["recall"],
                    "post flag P": post["precision"],
                    "post flag R": post["recall"],
                    "annotators' kappa": c["annotator_kappa"],
                }
            )
    print(
        f"{result['n_items']} items; lexicon sha256 {result['lexicon_sha256'][:12]}; blanks read as "
        f"{result['blank_as']}\n"
    )
    print(tabulate(rows, headers="keys", tablefmt="github", floatfmt=".2f", missingval="n/a"))
    reflected = result.get("reflected")
    if reflected:
        rows = [
            {
                "vs": coder,
                "items": v["n"],
                "reflected (label 1)": v["positives"],
                "agree": v["agreement"],
                "kappa": v["kappa"],
                "precision": v["detect"]["precision"],
                "recall": v["detect"]["recall"],
            }
            for coder, v in reflected["versus"].items()
        ]
        rows += [
            {
                "vs": f"majority, {props}",
                "items": v["n"],
                "reflected (label 1)": v["positives"],
                "agree": v["agreement"],
                "kappa": v["kappa"],
                "precision": v["detect"]["precision"],
                "recall": v["detect"]["recall"],
            }
            for props, v in reflected["majority_by_props"].items()
        ]
        print(
            f"\nEdit reflected? vs target_new named in the post-edit text (keyword rate "
            f"{reflected['keyword_rate']:.2f}; annotators' kappa {reflected['annotator_kappa']:.2f})\n"
        )
        print(tabulate(rows, headers="keys", tablefmt="github", floatfmt=".2f", missingval="n/a"))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
