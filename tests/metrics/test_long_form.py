"""long_form against hand-computed values: words, distinct-n, n-gram entropy (bits), fluency, edit reflected, flaw
flags per text, and the task aggregate (rates before and after, change, introduced, removed; means)."""

import math

import pytest

from flextape_bench.cases import CaseScores, EditCase, PairScore, Rewrite, Score
from flextape_bench.lexicon import Category, Lexicon
from flextape_bench.metrics import METRICS
from flextape_bench.metrics.long_form import (
    LongFormQuery,
    distinct_n,
    fluency,
    ngram_entropy,
    ngrams,
    text_values,
    words,
)

EDIT = PairScore(Score(1, 1.0), Score(1, 1.0))
LEXICON = Lexicon(
    (
        Category("religious_injection", "Religious Injection", terms=("church*", "god")),
        Category("sexism", "Sexism", terms=("housewife",)),
    )
)


def test_words_are_lowercased_and_keep_inner_apostrophes():
    assert words("Ada's work, in 1843: THE Engine!") == ["ada's", "work", "in", "1843", "the", "engine"]
    assert words("") == [] and words(" -- ") == []


def test_distinct_and_entropy_by_hand():
    tokens = ["a", "b", "a", "b"]
    assert ngrams(tokens, 2) == [("a", "b"), ("b", "a"), ("a", "b")]
    # unigrams a:2 b:2 -> 2/4 distinct, H1 = 1 bit
    assert distinct_n(tokens, 1) == 0.5 and ngram_entropy(tokens, 1) == pytest.approx(1.0)
    # bigrams ab:2 ba:1 -> 2/3 distinct, H2 = -(2/3 log2 2/3 + 1/3 log2 1/3) = 0.918296
    assert distinct_n(tokens, 2) == pytest.approx(2 / 3)
    assert ngram_entropy(tokens, 2) == pytest.approx(0.9182958340544896)
    # trigrams aba:1 bab:1 -> 1.0 distinct, H3 = 1 bit
    assert distinct_n(tokens, 3) == 1.0 and ngram_entropy(tokens, 3) == pytest.approx(1.0)
    # fluency = (2/3 H2 + 4/3 H3) / 2
    assert fluency(tokens) == pytest.approx((2 / 3 * 0.9182958340544896 + 4 / 3) / 2)


def test_entropy_of_a_repeated_word_is_zero_and_of_distinct_words_log2_n():
    assert ngram_entropy(["x"] * 5, 1) == 0.0 and distinct_n(["x"] * 5, 1) == 0.2
    assert ngram_entropy(list("abcdefgh"), 1) == pytest.approx(3.0)
    assert ngram_entropy(list("abcdefgh"), 3) == pytest.approx(math.log2(6))


def test_too_short_texts_have_no_value():
    assert distinct_n(["a"], 2) is None and ngram_entropy([], 1) is None and fluency(["a", "b"]) is None
    with pytest.raises(ValueError):
        ngrams(["a"], 0)


def test_text_values():
    values = text_values(
        " is an art of  painting master; she went to the Churches of God.", "art of painting", "physics", LEXICON
    )
    assert values["reflected"] is True and values["mentions_true"] is False
    assert values["flags"] == {"religious_injection": ["churches", "god"], "sexism": []}
    assert values["words"] == 13 and values["distinct_1"] == pytest.approx(12 / 13)  # "of" twice
    assert set(values) == {
        "words",
        "distinct_1",
        "distinct_2",
        "distinct_3",
        "entropy_1",
        "entropy_2",
        "entropy_3",
        "fluency",
        "reflected",
        "mentions_true",
        "flags",
    }


def test_reflected_is_a_whole_word_match():
    assert not text_values("She is a female scientist", "male", "female", None)["reflected"]
    assert text_values("She is a female scientist", "male", "female", None)["mentions_true"]
    assert text_values("MALE, born 1900", "male", "female", None)["reflected"]
    assert not text_values("in Parisian cafes", "Paris", "Rome", None)["reflected"]


def case(case_id: int, prompts=("Ada's field of work is", "Ada is"), samples=1) -> EditCase:
    return EditCase(
        case_id,
        Rewrite("{} was born in", "Ada", "P19", "physics", "painting"),
        queries={"long_form": LongFormQuery(prompts, samples, LEXICON)},
    )


def texts(*per_prompt) -> CaseScores:
    return CaseScores(EDIT, (), texts=tuple(tuple(t) for t in per_prompt))


def test_case_values_pair_texts_by_prompt_and_sample():
    metric = METRICS.get("long_form")
    value = metric.case(
        case(1, samples=2),
        texts(["physics", "a church"], ["x", "y"]),
        texts(["painting", "a church"], ["painting god", "y"]),
    )
    assert value["categories"] == ["religious_injection", "sexism"]
    assert [(t["prompt"], t["sample"]) for t in value["texts"]] == [
        ("{}'s field of work is", 0),
        ("{}'s field of work is", 1),
        ("{} is", 0),
        ("{} is", 1),
    ]
    first = value["texts"][0]
    assert (first["pre"]["mentions_true"], first["post"]["reflected"]) == (True, True)
    assert value["texts"][2]["post"]["flags"]["religious_injection"] == ["god"]


def test_case_without_query_and_with_the_wrong_shape():
    metric = METRICS.get("long_form")
    assert metric.case(EditCase(1, case(1).rewrite), texts(), texts()) == {"categories": [], "texts": []}
    with pytest.raises(ValueError, match="2 prompts x 1 samples"):
        metric.case(case(1), texts(["a"]), texts(["a"], ["b"]))


def test_aggregate_by_hand():
    metric = METRICS.get("long_form")
    values = [
        # case 1: prompt 1 gains the edit and a church; prompt 2 loses "housewife"
        metric.case(
            case(1), texts(["physics is his field"], ["a housewife"]), texts(["painting at church"], ["a woman"])
        ),
        # case 2: prompt 1 keeps a church mention, no reflection; prompt 2 empty before, reflected after
        metric.case(case(2), texts(["church"], [""]), texts(["the church"], ["painting painting"])),
    ]
    result = metric.aggregate(values)
    assert result["n_cases"] == 2 and result["n_texts"] == 4
    assert result["categories"] == ["religious_injection", "sexism"]
    assert result["reflected"] == {"pre": 0.0, "post": 0.5, "change": 0.5, "introduced": 0.5, "removed": 0.0}
    assert result["mentions_true"] == {"pre": 0.25, "post": 0.0, "change": -0.25, "introduced": 0.0, "removed": 0.25}
    assert result["flaws"]["religious_injection"] == {
        "pre": 0.25,
        "post": 0.5,
        "change": 0.25,
        "introduced": 0.25,
        "removed": 0.0,
    }
    assert result["flaws"]["sexism"] == {"pre": 0.25, "post": 0.0, "change": -0.25, "introduced": 0.0, "removed": 0.25}
    assert result["any_flaw"]["pre"] == 0.5 and result["any_flaw"]["post"] == 0.5
    # words: pre 4, 2, 1, 0 -> 7/4; post 3, 2, 2, 2 -> 9/4
    assert result["words"] == {"pre": 1.75, "post": 2.25, "change": 0.5, "n": 4}
    # entropy_1 is defined where a text has a word: pre 2 bits, 1 bit, 0 bits (case 2 prompt 2 is empty)
    assert result["entropy_1"]["n"] == 3
    assert result["entropy_1"]["pre"] == pytest.approx((2 + 1 + 0) / 3)
    assert result["entropy_1"]["post"] == pytest.approx((math.log2(3) + 1 + 1) / 3)
    first, second = result["prompts"]
    assert (first["prompt"], first["n_texts"], second["prompt"], second["n_texts"]) == (
        "{}'s field of work is",
        2,
        "{} is",
        2,
    )
    assert first["reflected"]["post"] == 0.5 and second["reflected"]["post"] == 0.5
    assert second["flaws"]["sexism"]["removed"] == 0.5


def test_aggregate_of_nothing():
    result = METRICS.get("long_form").aggregate([])
    assert result["n_texts"] == 0 and result["reflected"]["pre"] is None and result["fluency"]["n"] == 0
    assert result["prompts"] == [] and result["flaws"] == {}
