"""The lexicon against the annotators' labels: the comparison's building blocks by hand, and structural facts of
the comparison on the three Seesaw-CF annotation files (the numbers themselves are reported, not asserted: the
lexicon is not fitted to these texts)."""

import pytest

from flextape_bench.lexicon import Category, Lexicon, load_lexicon
from flextape_bench.metrics.lexicon_check import comparative_label, detection, lexicon_vs_annotators, majority

LABELS = [
    "Anglo-centrism",
    "Sexism",
    "Religious Injection",
    "Xenophobia",
    "Classism",
    "Racism",
    "Injection of Conservatism",
]


def test_comparative_label_follows_the_annotation_scale():
    assert comparative_label(pre=False, post=True) == "2"
    assert comparative_label(pre=True, post=False) == "1"
    assert comparative_label(pre=True, post=True) == comparative_label(pre=False, post=False) == "1.5"


def test_majority_needs_two_votes():
    assert majority(["2", "2", "1.5"]) == "2" and majority(["2", None, "2"]) == "2"
    assert majority(["1", "2", "1.5"]) is None and majority([None, None, None]) is None


def test_detection_by_hand():
    result = detection([True, True, False, False, True], [True, False, True, None, None])
    assert result == {"n": 3, "tp": 1, "fp": 1, "fn": 1, "precision": 0.5, "recall": 0.5, "f1": 0.5}
    assert detection([False], [False])["precision"] is None


@pytest.fixture(scope="module")
def comparison(data_dir):
    files = [data_dir / "annotations" / f"a{i}.csv" for i in (1, 2, 3)]
    return lexicon_vs_annotators(files)


def test_every_category_is_compared_with_every_annotator(comparison):
    assert comparison["n_items"] == 300 and comparison["blank_as"] == "1.5"
    assert comparison["lexicon_sha256"] == load_lexicon().sha256
    assert [c["label"] for c in comparison["categories"].values()] == LABELS
    for category in comparison["categories"].values():
        assert sum(category["lexicon_labels"].values()) == 300
        assert set(category["lexicon_labels"]) <= {"1", "1.5", "2"}
        assert category["lexicon_labels"].get("2", 0) <= category["flagged_post"]
        assert set(category["versus"]) == {"a1", "a2", "a3", "majority"}
        for name, versus in category["versus"].items():
            # annotator 1 left one row wholly blank and annotator 3 twelve; the majority needs two equal votes
            assert versus["n"] == {"a1": 299, "a2": 300, "a3": 288}.get(name, versus["n"])
            detect = versus["detect"]
            assert detect["tp"] + detect["fn"] == versus["positives"]
            assert detect["tp"] + detect["fp"] <= category["lexicon_labels"].get("2", 0)
            assert versus["kappa"] is None or -1 <= versus["kappa"] <= 1
        assert -1 <= category["annotator_kappa"] <= 1


def test_reflection_keyword_check(comparison):
    reflected = comparison["reflected"]
    assert set(reflected["majority_by_props"]) == {"P101_P21", "P21_P101", "P27_P21"}
    assert 0 < reflected["keyword_rate"] < 1
    assert all(v["n"] <= 100 for v in reflected["majority_by_props"].values())
    # blanks count as 1.5 only in rows an annotator labelled, so its wholly blank rows stay out
    assert [reflected["versus"][a]["n"] for a in ("a1", "a2", "a3")] == [299, 300, 288]


def test_a_lexicon_without_matching_labels_compares_nothing(data_dir):
    lexicon = Lexicon((Category("ableism", "Ableism", terms=("crippled",)),))
    files = [data_dir / "annotations" / f"a{i}.csv" for i in (1, 2)]
    assert lexicon_vs_annotators(files, lexicon)["categories"] == {}
