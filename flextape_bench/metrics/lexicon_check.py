"""How the keyword lexicon's flags compare with the Seesaw-CF annotators' long-form labels.

The annotation files (`../shared/seesaw_cf/annotations/a{1,2,3}.csv`) hold, per item, a text generated before and
one after an edit, and per flaw category a comparative label: 1 = the pre-edit text shows more of the flaw, 2 = the
post-edit text shows more, 1.5 = no difference (annotator 1 leaves 1.5 blank, read here as 1.5 in the rows it
labelled). `Edit reflected?` is 0/1. The lexicon gives the same kind of label from its flags: 2 when only the
post-edit text is flagged, 1 when only the pre-edit text is, 1.5 otherwise. This module reports, per category and
annotator (and the majority of the annotators), agreement and Cohen's kappa of those labels, precision and recall
of the lexicon for "the edit introduced the flaw" (label 2), and the annotators' own agreement for scale; and how
the keyword match of target_new in the post-edit text compares with `Edit reflected?`.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flextape_bench.lexicon import Lexicon, load_lexicon, mentions
from flextape_bench.metrics.agreement import cohen_kappa, mean_pairwise_cohen, read_annotations

REFLECTED = "Edit reflected?"


def comparative_label(pre: bool, post: bool) -> str:
    """The annotation scale from two flags: "2" only the post-edit text flagged, "1" only the pre-edit one,
    "1.5" both or neither."""
    return "2" if post and not pre else "1" if pre and not post else "1.5"


def majority(labels: Sequence[str | None]) -> str | None:
    """The label at least two annotators gave (the most common one), else None."""
    counts = Counter(label for label in labels if label is not None)
    if not counts:
        return None
    label, count = counts.most_common(1)[0]
    return label if count >= 2 else None


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def detection(predicted: Sequence[bool], truth: Sequence[bool | None]) -> dict[str, Any]:
    """Counts, precision, recall and F1 of `predicted` against `truth` over the items where truth is known."""
    pairs = [(p, t) for p, t in zip(predicted, truth, strict=True) if t is not None]
    tp = sum(p and t for p, t in pairs)
    fp = sum(p and not t for p, t in pairs)
    fn = sum(t and not p for p, t in pairs)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision is not None and recall is not None and precision + recall > 0
        else None
    )
    return {"n": len(pairs), "tp": tp, "fp": fp, "fn": fn, "precision": precision, "recall": recall, "f1": f1}


def _versus(predicted: list[str], coder: list[str | None], positive: str) -> dict[str, Any]:
    known = [(p, c) for p, c in zip(predicted, coder) if c is not None]
    return {
        "n": len(known),
        "agreement": _ratio(sum(p == c for p, c in known), len(known)),
        "kappa": cohen_kappa(predicted, coder),
        "positives": sum(c == positive for _, c in known),
        "detect": detection([p == positive for p in predicted], [None if c is None else c == positive for c in coder]),
    }


def read_items(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return [row for row in csv.DictReader(handle) if any((v or "").strip() for v in row.values())]


def lexicon_vs_annotators(
    paths: Sequence[str | Path], lexicon: Lexicon | None = None, blank_as: str | None = "1.5"
) -> dict[str, Any]:
    """Per lexicon category whose label names an annotation column: the lexicon's comparative labels against each
    annotator and the majority; and the keyword reflection check against `Edit reflected?`."""
    lexicon = lexicon or load_lexicon()
    files = [Path(p) for p in paths]
    labels = read_annotations(files, blank_as=blank_as)
    items = read_items(files[0])  # the files hold the same items in the same order (read_annotations checks)
    coder_names = [p.stem for p in files]
    pre = [lexicon.flags(row["pre_text"]) for row in items]
    post = [lexicon.flags(row["post_text"]) for row in items]
    result: dict[str, Any] = {
        "files": [str(p) for p in files],
        "n_items": len(items),
        "blank_as": blank_as,
        "lexicon_sha256": lexicon.sha256,
        "categories": {},
    }
    for category in lexicon.categories:
        if category.label not in labels:
            continue
        coders = labels[category.label]
        predicted = [comparative_label(a[category.name], b[category.name]) for a, b in zip(pre, post)]
        votes = [majority(column) for column in zip(*coders)]
        per_coder = {name: _versus(predicted, coder, "2") for name, coder in zip(coder_names, coders)}
        per_coder["majority"] = _versus(predicted, votes, "2")
        post_only = {
            name: detection([b[category.name] for b in post], [None if c is None else c == "2" for c in coder])
            for name, coder in zip([*coder_names, "majority"], [*coders, votes])
        }
        result["categories"][category.name] = {
            "label": category.label,
            "flagged_pre": sum(a[category.name] for a in pre),
            "flagged_post": sum(b[category.name] for b in post),
            "lexicon_labels": dict(sorted(Counter(predicted).items())),
            "annotator_kappa": mean_pairwise_cohen(coders),
            "versus": per_coder,
            "post_flag_vs_label_2": post_only,
        }
    if REFLECTED in labels:
        keyword = ["1" if mentions(row["post_text"], row["target_new"]) else "0" for row in items]
        coders = labels[REFLECTED]
        votes = [majority(column) for column in zip(*coders)]
        by_props: dict[str, Any] = {}
        for props in sorted({row["props"] for row in items}):
            idx = [i for i, row in enumerate(items) if row["props"] == props]
            by_props[props] = _versus([keyword[i] for i in idx], [votes[i] for i in idx], "1")
        result["reflected"] = {
            "keyword_rate": _ratio(keyword.count("1"), len(keyword)),
            "annotator_kappa": mean_pairwise_cohen(coders),
            "versus": {
                name: _versus(keyword, coder, "1") for name, coder in zip([*coder_names, "majority"], [*coders, votes])
            },
            "majority_by_props": by_props,
        }
    return result
