"""Batched scoring equals one-at-a-time scoring and an independent full-logits reference, on every architecture."""

import pytest
import torch

from flextape_bench.cases import ScoreRequest
from flextape_bench.scoring import Scorer
from flextape_bench.tokenization import encode_continuation

REQUESTS = [
    ScoreRequest("Marie Waldron was born in", ("New York City", "Clunie")),
    ScoreRequest("The mother tongue of Danielle Darrieux is", ("English", "French")),
    ScoreRequest("Judith Matloff was born in", ("Paris", "art of painting", "1990")),
    ScoreRequest("Frank R. Adams's field of work is", ("medicine",)),
]


def reference_nll(adapter, prompt, target):
    """Sum of target-token NLLs from a plain full forward pass over prompt + target (all positions, full vocab)."""
    cont = encode_continuation(adapter.tokenizer, prompt, target)
    ids = torch.tensor([cont.context + cont.target])
    with torch.no_grad():
        logprobs = torch.log_softmax(adapter.model(input_ids=ids).logits[0].double(), -1)
    start = len(cont.context) - 1
    return -sum(logprobs[start + i, tok].item() for i, tok in enumerate(cont.target)), len(cont.target)


def _check(adapter, scorer):
    batched = scorer.score(REQUESTS)
    for request, scores in zip(REQUESTS, batched):
        alone = scorer.score([request])[0]
        for target, score, single in zip(request.targets, scores, alone):
            ref, n_tokens = reference_nll(adapter, request.prompt, target)
            assert score.n_tokens == n_tokens
            assert score.sum_nll == pytest.approx(single.sum_nll, abs=1e-4)
            assert score.sum_nll == pytest.approx(ref, abs=1e-4)
            assert 0.0 < score.p <= 1.0


def test_chat_template_scores_the_target_after_the_rendered_user_turn(gemma, gemma_chat):
    """With the chat template, a target's NLL is that of a full forward pass over the template's rendering of the
    prompt (Gemma's turns, written out here) followed by the target, BOS once; not that after the plain prompt."""
    prompt, target = "Ada Lovelace works in the field of", "physics"
    rendered = f"<bos><start_of_turn>user\n{prompt}<end_of_turn>\n<start_of_turn>model\n"
    tok = gemma.tokenizer
    context = tok(rendered, add_special_tokens=False)["input_ids"]
    ids = tok(f"{rendered} {target}", add_special_tokens=False)["input_ids"]
    assert ids[: len(context)] == context
    with torch.no_grad():
        logprobs = torch.log_softmax(gemma.model(input_ids=torch.tensor([ids])).logits[0].double(), -1)
    expected = -sum(logprobs[i - 1, ids[i]].item() for i in range(len(context), len(ids)))
    ((chat,),) = Scorer(gemma_chat).score([ScoreRequest(prompt, (target,))])
    assert chat.n_tokens == len(ids) - len(context)
    assert chat.sum_nll == pytest.approx(expected, abs=1e-4)
    ((plain,),) = Scorer(gemma).score([ScoreRequest(prompt, (target,))])
    assert plain.sum_nll != pytest.approx(chat.sum_nll, abs=1e-2)


def test_tiny_models_of_every_architecture(tiny):
    _check(tiny, Scorer(tiny))


def test_small_batches_equal_large_batches(tiny):
    large = Scorer(tiny).score(REQUESTS)
    small = Scorer(tiny, batch_tokens=16, head_chunk=2).score(REQUESTS)
    for a, b in zip(large, small):
        assert [s.sum_nll for s in a] == pytest.approx([s.sum_nll for s in b], abs=1e-4)


def test_embedded_gemma(gemma):
    _check(gemma, Scorer(gemma))


def test_multi_token_targets_have_geometric_mean_probability(gemma):
    (score,) = Scorer(gemma).score([ScoreRequest("Marie Waldron was born in", ("New York City",))])[0]
    assert score.n_tokens == 3
    assert score.p == pytest.approx(torch.exp(torch.tensor(-score.sum_nll / 3, dtype=torch.float64)).item())


def test_out_of_memory_halves_the_batch_and_scores_alike(tiny_llama, out_of_memory_above, capsys):
    expected = Scorer(tiny_llama).score(REQUESTS)
    longest = Scorer(tiny_llama).longest_row(REQUESTS)
    out_of_memory_above(tiny_llama, longest)  # one row per batch fits, two do not
    scorer = Scorer(tiny_llama, halvings=5)
    scores = scorer.score(REQUESTS)
    for a, b in zip(expected, scores):
        assert [s.sum_nll for s in a] == pytest.approx([s.sum_nll for s in b], abs=1e-4)
    assert scorer.batch_tokens < 2 * longest and scorer.halvings < 5
    assert "out of memory scoring a batch of" in capsys.readouterr().err
    with pytest.raises(torch.OutOfMemoryError):
        Scorer(tiny_llama).score(REQUESTS)  # no halvings: the error propagates
    with pytest.raises(torch.OutOfMemoryError):
        Scorer(tiny_llama, halvings=1).score(REQUESTS)  # 4096 -> one halving is not enough


def test_longest_row_packs_prompt_and_targets(tiny_llama):
    request = REQUESTS[2]
    conts = [encode_continuation(tiny_llama.tokenizer, request.prompt, t) for t in request.targets]
    assert Scorer(tiny_llama).longest_row(REQUESTS[2:3]) == len(conts[0].context) + sum(len(c.target) for c in conts)
    assert Scorer(tiny_llama).longest_row([]) == 0
