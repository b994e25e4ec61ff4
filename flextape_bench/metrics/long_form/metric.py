"""Long-form generation about the edited subject, before and after the edit: n-gram diversity (distinct-n, n-gram
entropy), whether the edit shows in the text (target_new mentioned) and whether the old value still does
(target_true), and keyword flags of the flaw categories of the task's lexicon (`flextape_bench/lexicon.py`).

Texts are the generated continuations only (the prompt is left out). Words: lowercased runs of letters and digits,
with inner apostrophes kept (`\\w+(?:['’]\\w+)*`). Formulas: docs/metrics.md.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from flextape_bench.cases import CaseScores, EditCase
from flextape_bench.errors import UserError
from flextape_bench.generation import Decoding
from flextape_bench.lexicon import mentions
from flextape_bench.metrics.base import Metric, Options, Preparation, Prepared
from flextape_bench.metrics.cross_property.metric import prompt_key
from flextape_bench.metrics.long_form.prepare import NAME, decoding_of, prepare_long_form, query_of
from flextape_bench.tasks.spec import TaskSpec

WORD = re.compile(r"\w+(?:['’]\w+)*")
ORDERS = (1, 2, 3)


def words(text: str) -> list[str]:
    """The text's words, lowercased."""
    return [w.lower() for w in WORD.findall(text)]


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(tokens: Sequence[str], n: int) -> float | None:
    """Distinct n-grams / all n-grams; None when the text has fewer than n words."""
    grams = ngrams(tokens, n)
    return len(set(grams)) / len(grams) if grams else None


def ngram_entropy(tokens: Sequence[str], n: int) -> float | None:
    """Shannon entropy in bits of the text's n-gram frequency distribution, H_n = -sum_g f_g log2 f_g with
    f_g = count(g) / number of n-grams; None when the text has fewer than n words."""
    grams = ngrams(tokens, n)
    if not grams:
        return None
    total = len(grams)
    return -sum(c / total * math.log2(c / total) for c in Counter(grams).values()) + 0.0


def fluency(tokens: Sequence[str]) -> float | None:
    """The weighted bi- and trigram entropy that ROME and MEMIT report as fluency: (2/3 H_2 + 4/3 H_3) / 2."""
    h2, h3 = ngram_entropy(tokens, 2), ngram_entropy(tokens, 3)
    return None if h2 is None or h3 is None else (2 / 3 * h2 + 4 / 3 * h3) / 2


def text_values(text: str, target_new: str, target_true: str, lexicon: Any) -> dict[str, Any]:
    """Per-text values: word count, distinct_n and entropy_n (n = 1, 2, 3), fluency, whether target_new
    (`reflected`) and target_true (`mentions_true`) occur as whole words, and per category the matched terms."""
    tokens = words(text)
    values: dict[str, Any] = {"words": len(tokens)}
    for n in ORDERS:
        values[f"distinct_{n}"] = distinct_n(tokens, n)
    for n in ORDERS:
        values[f"entropy_{n}"] = ngram_entropy(tokens, n)
    values["fluency"] = fluency(tokens)
    values["reflected"] = mentions(text, target_new)
    values["mentions_true"] = mentions(text, target_true)
    values["flags"] = lexicon.matches(text) if lexicon is not None else {}
    return values


NUMERIC = ("words", *(f"distinct_{n}" for n in ORDERS), *(f"entropy_{n}" for n in ORDERS), "fluency")


def _rates(pairs: Sequence[dict[str, Any]], test: Callable[[dict[str, Any]], bool]) -> dict[str, float | None]:
    """Share of texts where `test` holds before and after the edit, the change, and the shares where it holds only
    after (introduced) and only before (removed), over paired texts (same case, prompt and sample)."""
    if not pairs:
        return {"pre": None, "post": None, "change": None, "introduced": None, "removed": None}
    n = len(pairs)
    pre = [test(p["pre"]) for p in pairs]
    post = [test(p["post"]) for p in pairs]
    return {
        "pre": sum(pre) / n,
        "post": sum(post) / n,
        "change": (sum(post) - sum(pre)) / n,
        "introduced": sum(b and not a for a, b in zip(pre, post)) / n,
        "removed": sum(a and not b for a, b in zip(pre, post)) / n,
    }


def _means(pairs: Sequence[dict[str, Any]], key: str) -> dict[str, float | int | None]:
    """Mean before and after and the mean change, over the pairs where both values are defined."""
    both = [(p["pre"][key], p["post"][key]) for p in pairs if p["pre"][key] is not None and p["post"][key] is not None]
    if not both:
        return {"pre": None, "post": None, "change": None, "n": 0}
    n = len(both)
    pre, post = sum(a for a, _ in both) / n, sum(b for _, b in both) / n
    return {"pre": pre, "post": post, "change": post - pre, "n": n}


def _flagged(category: str) -> Callable[[dict[str, Any]], bool]:
    return lambda values: bool(values["flags"].get(category))


def summarize(pairs: Sequence[dict[str, Any]], categories: Sequence[str]) -> dict[str, Any]:
    """Rates and means over paired texts (see docs/metrics.md for the shape)."""
    return {
        "n_texts": len(pairs),
        "reflected": _rates(pairs, lambda v: v["reflected"]),
        "mentions_true": _rates(pairs, lambda v: v["mentions_true"]),
        "any_flaw": _rates(pairs, lambda v: any(bool(v["flags"].get(c)) for c in categories)),
        "flaws": {c: _rates(pairs, _flagged(c)) for c in categories},
        **{key: _means(pairs, key) for key in NUMERIC},
    }


class LongFormPreparation(Preparation):
    """Each case's query (prompts, samples, lexicon; the lexicon is read and checked here, before any model loads).
    The run identity records the lexicon's content and the generation code's version (neither is in the spec hash),
    config.json the full lexicon (to rerun the flags later), the summary the settings."""

    def prepare(
        self, spec: TaskSpec, cases: Sequence[EditCase], metrics: Sequence[Metric], options: Options
    ) -> Prepared:
        out, settings = prepare_long_form(spec, cases, options.lexicons)
        identity = {
            NAME: {
                "lexicon_sha256": settings["lexicon"]["sha256"],
                "generation_version": settings["generation_version"],
            }
        }
        config = (
            {"long_form_lexicons": out[0].queries[NAME].lexicon.to_json() | {"sources": settings["lexicon"]["sources"]}}
            if out
            else {}
        )
        return Prepared(
            out, summary={"long_form_settings": settings}, identity=identity, config=config, state=options.seed
        )

    def summary(self, prepared: Prepared, eos_token_ids: Sequence[int]) -> dict[str, Any]:
        return {
            key: value | {"eos_token_ids": list(eos_token_ids), "seed": prepared.state}
            for key, value in prepared.summary.items()
        }

    def check_run(self, options: Options, used: bool) -> None:
        if options.lexicons and not used:
            raise UserError(
                f"--lexicon applies to long_form tasks only, and none of {', '.join(options.tasks)} has "
                "one; add a *_longform task to --tasks or drop --lexicon"
            )


class LongForm(Metric):
    preparation = LongFormPreparation()

    def decoding(self, spec: TaskSpec) -> Decoding | None:
        return decoding_of(spec.long_form) if spec.long_form is not None else None

    def text_requests(self, case: EditCase) -> tuple[tuple[str, ...], int]:
        query = query_of(case)
        return (query.prompts, query.samples) if query is not None else ((), 0)

    def record(self, case: EditCase) -> dict[str, Any]:
        query = query_of(case)
        return {"long_form": query.to_json()} if query else {}  # prompts x samples of "texts"

    def samples(self, record: dict[str, Any]) -> Iterable[dict[str, Any]]:
        """Each text with its values, pre and post."""
        long_form, rewrite = record.get("long_form"), record["rewrite"]
        if not long_form:
            return
        values = iter(record["metrics"].get(NAME, {}).get("texts", []))
        for j, prompt in enumerate(long_form["prompts"]):
            for s in range(long_form["samples"]):
                value: dict[str, Any] = next(values, {"pre": {}, "post": {}})
                yield {
                    "case_id": record["case_id"],
                    "kind": "long_form",
                    "prompt": prompt,
                    "sample": s,
                    "target_new": rewrite["target_new"],
                    "target_true": rewrite["target_true"],
                    "pre": {"text": record["pre"]["texts"][j][s], **value["pre"]},
                    "post": {"text": record["post"]["texts"][j][s], **value["post"]},
                }

    def case(self, case: EditCase, pre: CaseScores, post: CaseScores) -> dict[str, Any]:
        query = query_of(case)
        if query is None:
            return {"categories": [], "texts": []}
        for when, scores in (("pre", pre), ("post", post)):
            if len(scores.texts) != len(query.prompts) or any(len(t) != query.samples for t in scores.texts):
                raise ValueError(
                    f"case {case.case_id}: {when}-edit texts of shape {[len(t) for t in scores.texts]} "
                    f"for {len(query.prompts)} prompts x {query.samples} samples"
                )
        rewrite = case.rewrite
        texts = []
        for j, prompt in enumerate(query.prompts):
            for s in range(query.samples):
                texts.append(
                    {
                        "prompt": prompt_key(prompt, rewrite.subject),
                        "sample": s,
                        "pre": text_values(pre.texts[j][s], rewrite.target_new, rewrite.target_true, query.lexicon),
                        "post": text_values(post.texts[j][s], rewrite.target_new, rewrite.target_true, query.lexicon),
                    }
                )
        categories = list(query.lexicon.names()) if query.lexicon is not None else []
        return {"categories": categories, "texts": texts}

    def aggregate(self, per_case: Sequence[dict[str, Any]]) -> dict[str, Any]:
        categories = list(dict.fromkeys(c for case in per_case for c in case["categories"]))
        pairs = [t for case in per_case for t in case["texts"]]
        by_prompt: dict[str, list[dict[str, Any]]] = {}
        for pair in pairs:
            by_prompt.setdefault(pair["prompt"], []).append(pair)
        return {
            "n_cases": len(per_case),
            "categories": categories,
            **summarize(pairs, categories),
            "prompts": [{"prompt": prompt, **summarize(group, categories)} for prompt, group in by_prompt.items()],
        }
