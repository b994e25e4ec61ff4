"""Cases and their scores: what is scored for a case, and CaseScores' JSON round trip (results and the cache)."""

import json
import math

import pytest

from flextape_bench.cases import (
    CaseScores,
    EditCase,
    PairScore,
    Probe,
    RequestOwners,
    Rewrite,
    Score,
    ScoreRequest,
    case_scores,
    distinct_prompts,
    score_requests,
)
from flextape_bench.metrics import METRICS
from flextape_bench.metrics.cross_property import CrossQuery
from flextape_bench.metrics.long_form import LongFormQuery
from flextape_bench.prescores import PreGenerationCache, PreScoreCache, cache_key, generation_key

REWRITE = Rewrite("{} was born in", "Ada", "P19", "London", "Paris")
PROMPTS = ("Ada's field of work is",) * 5 + ("Ada is",) * 5
CROSS = CrossQuery("P101", distinct_prompts(PROMPTS), ("physics", "law", "medicine"), ("law",))
CASE = EditCase(7, REWRITE, (Probe("Bea was born in"), Probe("Carl was born in")), PROMPTS, {"cross_property": CROSS})


def scores(seed: float, n: int) -> tuple[Score, ...]:
    return tuple(Score(i + 1, seed + i / 7) for i in range(n))  # awkward floats for the JSON round trip


def test_score_requests_add_each_distinct_generation_prompt_with_every_candidate():
    requests = score_requests(CASE) + METRICS.get("cross_property").score_requests(CASE)
    targets = ("Paris", "London")
    assert requests == [
        ScoreRequest("Ada was born in", targets, ("case", 7)),
        ScoreRequest("Bea was born in", targets, ("case", 7)),
        ScoreRequest("Carl was born in", targets, ("case", 7)),
        ScoreRequest("Ada's field of work is", CROSS.candidates, ("case", 7)),
        ScoreRequest("Ada is", CROSS.candidates, ("case", 7)),
    ]  # without the task's owners, one batching group per case
    plain = EditCase(7, REWRITE, CASE.probes, PROMPTS)  # no cross query: generation prompts are not scored
    assert len(score_requests(plain)) == 3 and METRICS.get("cross_property").score_requests(plain) == []


def _case(case_id: int, subject: str, new: str, true: str, probes: list[str]) -> EditCase:
    rewrite = Rewrite("{} was born in", subject, "P19", true, new)
    return EditCase(case_id, rewrite, tuple(Probe(p) for p in probes))


def test_shared_requests_belong_to_the_first_case_that_asks_them():
    """Three cases of a file: 11 and 12 share the targets and two probes, 13 asks one of them with other targets."""
    cases = [
        _case(11, "Ada", "Paris", "London", ["Bea was born in", "Carl was born in"]),
        _case(12, "Dan", "Paris", "London", ["Carl was born in", "Bea was born in", "Eve was born in"]),
        _case(13, "Fay", "Paris", "Rome", ["Bea was born in"]),
    ]
    owners = RequestOwners.of(cases)
    paris_london, paris_rome = ("Paris", "London"), ("Paris", "Rome")
    assert score_requests(cases[1], owners) == [
        ScoreRequest("Dan was born in", paris_london, ("shared", 12)),
        ScoreRequest("Carl was born in", paris_london, ("shared", 11)),  # asked first by case 11
        ScoreRequest("Bea was born in", paris_london, ("shared", 11)),
        ScoreRequest("Eve was born in", paris_london, ("shared", 12)),
    ]
    assert score_requests(cases[2], owners)[1] == ScoreRequest("Bea was born in", paris_rome, ("shared", 13))
    # scoring case 12 alone still scores case 11's whole group (its edit prompt too): the batches of a full run
    assert owners.complete(score_requests(cases[1], owners)) == [
        *score_requests(cases[1], owners),
        ScoreRequest("Ada was born in", paris_london, ("shared", 11)),
    ]
    both = score_requests(cases[0], owners) + score_requests(cases[1], owners)
    assert len(owners.complete(both)) == 5  # 7 asked, 5 distinct, nothing outside them


def test_case_scores_split_the_scorer_answers():
    answers = [scores(0.1, 2), scores(0.2, 2), scores(0.3, 2), scores(0.4, 3), scores(0.5, 3)]
    result = case_scores(CASE, answers, extra=2)
    assert result.edit == PairScore(*answers[0]) and result.probes == (PairScore(*answers[1]), PairScore(*answers[2]))
    assert result.generation == (answers[3], answers[4])
    with pytest.raises(ValueError, match="case 7: 4 scored requests"):
        case_scores(CASE, answers[:4], extra=2)


def test_case_scores_json_round_trip_with_generation_scores():
    original = CaseScores(
        PairScore(*scores(0.1, 2)), (PairScore(*scores(0.2, 2)),), (scores(math.pi, 3), scores(math.e, 3))
    )
    data = json.loads(json.dumps(original.to_json()))
    assert data["generation"][1] == {"n_tokens": [1, 2, 3], "sum_nll": [math.e, math.e + 1 / 7, math.e + 2 / 7]}
    again = CaseScores.from_json(data)
    assert again == original and again.generation[0][2].p == original.generation[0][2].p


def test_case_scores_without_generation_keep_their_old_json():
    original = CaseScores(PairScore(*scores(0.1, 2)), (PairScore(*scores(0.2, 2)),))
    assert set(original.to_json()) == {"edit", "probes"}
    assert CaseScores.from_json(json.loads(json.dumps(original.to_json()))) == original


def test_prescore_cache_serves_an_entry_only_for_the_prompts_and_targets_it_was_made_for(tmp_path):
    cache = PreScoreCache(tmp_path, "key")
    stored = CaseScores(PairScore(*scores(0.1, 2)), (PairScore(*scores(0.2, 2)),) * 2, (scores(0.4, 3),) * 2)
    requests = score_requests(CASE) + METRICS.get("cross_property").score_requests(CASE)
    cache.put(7, requests, stored)
    assert cache.get(7, requests) == stored and cache.get(8, requests) is None
    other_target = [ScoreRequest(r.prompt, ("Paris", "Rome"), r.group) for r in requests]
    other_prompt = [ScoreRequest(r.prompt + " ", r.targets, r.group) for r in requests]
    assert cache.get(7, other_target) is None and cache.get(7, other_prompt) is None
    assert cache.get(7, requests[:-1]) is None  # another candidate list or probe count


def test_cache_keys_change_with_every_part_of_the_model_state():
    state = {
        "weights": "w",
        "tokenizer": "t",
        "config": "c",
        "device": "cpu",
        "torch": "2.13.0",
        "transformers": "4.57.0",
    }
    key = cache_key(state, "spec", "data", "v1")
    for part in state:
        assert cache_key({**state, part: "other"}, "spec", "data", "v1") != key
        assert generation_key({**state, part: "other"}, {}, 0) != generation_key(state, {}, 0)
    assert (
        len(
            {
                key,
                cache_key(state, "spec2", "data", "v1"),
                cache_key(state, "spec", "data2", "v1"),
                cache_key(state, "spec", "data", "v2"),
            }
        )
        == 4
    )


def test_distinct_prompts_keep_the_first_appearance_order():
    assert distinct_prompts(PROMPTS) == ("Ada's field of work is", "Ada is")
    assert distinct_prompts(()) == ()


def test_case_scores_carry_long_form_texts_through_json():
    original = CaseScores(PairScore(*scores(0.1, 2)), (), texts=(("Ada is a painter.", " ünïcode\n"), ("", "x")))
    data = json.loads(json.dumps(original.to_json()))
    assert data["texts"] == [["Ada is a painter.", " ünïcode\n"], ["", "x"]]
    assert CaseScores.from_json(data) == original


def test_long_form_query_records_prompts_and_samples_not_the_lexicon():
    query = LongFormQuery(("Ada is",), 2, lexicon=object())
    assert query.to_json() == {"prompts": ["Ada is"], "samples": 2}
    assert query == LongFormQuery(("Ada is",), 2)  # the lexicon object is not compared


def test_pregeneration_cache_checks_prompts_and_samples(tmp_path):
    state = {"weights": "w", "tokenizer": "t"}
    key = generation_key(state, {"decoding": {"top_k": 50}}, seed=0)
    assert key != generation_key(state, {"decoding": {"top_k": 50}}, seed=1)
    assert key != generation_key(state, {"decoding": {"top_k": 40}}, seed=0)
    cache = PreGenerationCache(tmp_path, key)
    cache.put(7, ("Ada is",), 2, (("a", "b"),))
    assert cache.get(7, ("Ada is",), 2) == (("a", "b"),)
    assert cache.get(7, ("Ada was",), 2) is None and cache.get(7, ("Ada is",), 1) is None
    assert cache.get(8, (), 1) is None
