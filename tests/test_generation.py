"""Seeded generation on tiny random models of every architecture: the same seed gives the same text whatever the
batch, greedy decoding matches transformers' generate, EOS and max_new_tokens stop a row; and the token filters."""

import math

import pytest
import torch

from flextape_bench.generation import (
    Decoding,
    GenerationRequest,
    TextGenerator,
    choose_tokens,
    derive_seed,
    eos_token_ids,
    filter_logits,
)

PROMPTS = ["Marie Curie is", "The capital of the United Kingdom of Great Britain and Northern Ireland is", "X"]


def _requests(seeds=(1, 2, 3)):
    return [GenerationRequest(p, s) for p, s in zip(PROMPTS, seeds)]


def test_same_seed_same_text_in_any_batch(tiny):
    generator = TextGenerator(tiny, Decoding(max_new_tokens=8, top_k=0))
    batched = generator.generate(_requests())
    again = generator.generate(_requests())
    alone = [generator.generate([r])[0] for r in _requests()]
    reversed_batch = generator.generate(_requests()[::-1])[::-1]
    assert (
        [g.text for g in batched]
        == [g.text for g in again]
        == [g.text for g in alone]
        == [g.text for g in reversed_batch]
    )
    assert all(0 < g.n_tokens <= 8 for g in batched)
    torch.manual_seed(123)  # the global random state plays no part
    assert [g.text for g in generator.generate(_requests())] == [g.text for g in batched]


def test_other_seeds_give_other_texts(tiny):
    generator = TextGenerator(tiny, Decoding(max_new_tokens=8, top_k=0, temperature=2.0))
    texts = {generator.generate([GenerationRequest(PROMPTS[0], seed)])[0].text for seed in range(6)}
    assert len(texts) > 1


def test_greedy_decoding_matches_transformers_generate(tiny):
    generator = TextGenerator(tiny, Decoding(max_new_tokens=6, do_sample=False), eos_ids=[])
    ours = generator.generate(_requests())
    for prompt, mine in zip(PROMPTS, ours):
        ids = tiny.tokenizer(prompt, return_tensors="pt")
        out = tiny.model.generate(
            **ids, do_sample=False, max_new_tokens=6, min_new_tokens=6, pad_token_id=tiny.tokenizer.pad_token_id
        )
        new = out[0, ids["input_ids"].shape[1] :].tolist()
        assert mine.n_tokens == 6 and not mine.stopped
        assert mine.text == generator.decode(ids["input_ids"][0].tolist(), new)


def test_chat_template_prompt_is_the_rendered_user_turn_and_greedy_matches_generate(gemma_chat):
    """A generation prompt is read as the chat template renders it (Gemma's turns, written out here), BOS once."""
    prompt = "Ada Lovelace works in the field of"
    rendered = f"<bos><start_of_turn>user\n{prompt}<end_of_turn>\n<start_of_turn>model\n"
    tok = gemma_chat.tokenizer
    generator = TextGenerator(gemma_chat, Decoding(max_new_tokens=4, do_sample=False), eos_ids=[])
    ids = tok(rendered, add_special_tokens=False)["input_ids"]
    assert generator.encode(prompt) == ids and ids.count(tok.bos_token_id) == 1
    out = gemma_chat.model.generate(
        input_ids=torch.tensor([ids]), do_sample=False, max_new_tokens=4, min_new_tokens=4, pad_token_id=0
    )
    (mine,) = generator.generate([GenerationRequest(prompt)])
    assert mine.text == generator.decode(ids, out[0, len(ids) :].tolist())


def test_eos_stops_a_row_and_is_left_out(tiny):
    greedy = Decoding(max_new_tokens=5, do_sample=False)
    first = TextGenerator(tiny, greedy, eos_ids=[]).generate(_requests())
    prompt_ids = TextGenerator(tiny, greedy).encode(PROMPTS[0])
    with torch.no_grad():
        logits = tiny.model(torch.tensor([prompt_ids])).logits[0, -1]
    stop = int(logits.argmax())  # the token greedy decoding picks first after PROMPTS[0] becomes EOS
    stopped = TextGenerator(tiny, greedy, eos_ids=[stop]).generate(_requests())
    assert stopped[0] == type(stopped[0])("", 0, True)
    assert all(g.n_tokens <= 5 for g in stopped)
    assert first[0].n_tokens == 5 and not first[0].stopped


def test_eos_ids_include_the_tokenizer_and_the_generation_config(tiny):
    ids = eos_token_ids(tiny)
    assert ids[0] == tiny.tokenizer.eos_token_id and len(set(ids)) == len(ids)


def test_batches_respect_the_token_budget(tiny, monkeypatch):
    generator = TextGenerator(tiny, Decoding(max_new_tokens=4), batch_tokens=1)  # one row per batch
    sizes = []
    original = generator._batch
    monkeypatch.setattr(
        generator, "_batch", lambda prompts, seeds: sizes.append(len(prompts)) or original(prompts, seeds)
    )
    out = generator.generate(_requests())
    assert sizes == [1, 1, 1] and len(out) == 3


def test_derive_seed_is_stable_and_distinct():
    assert derive_seed(0, 22775, "X is", 0) == derive_seed(0, 22775, "X is", 0)
    seeds = {
        derive_seed(0, 22775, "X is", 0),
        derive_seed(1, 22775, "X is", 0),
        derive_seed(0, 22776, "X is", 0),
        derive_seed(0, 22775, "X was", 0),
        derive_seed(0, 22775, "X is", 1),
    }
    assert len(seeds) == 5 and all(0 <= s < 2**63 for s in seeds)


def test_top_k_and_top_p_filters():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    top_k = filter_logits(logits, Decoding(top_k=2))
    assert torch.isinf(top_k[0, 2:]).all() and not torch.isinf(top_k[0, :2]).any()
    # nucleus 0.8: 0.5 + 0.3 reach 0.8, so the third token (mass before it 0.8 >= 0.8) is dropped
    top_p = filter_logits(logits, Decoding(top_k=0, top_p=0.8))
    assert torch.isinf(top_p[0]).tolist() == [False, False, True, True]
    tiny_p = filter_logits(logits, Decoding(top_k=0, top_p=0.1))  # the most likely token always stays
    assert torch.isinf(tiny_p[0]).tolist() == [False, True, True, True]
    hot = filter_logits(logits, Decoding(top_k=0, temperature=2.0))
    assert torch.allclose(hot, logits / 2)


def test_choose_tokens_greedy_and_seeded():
    logits = torch.tensor([[0.0, 3.0, 1.0], [2.0, 0.0, 0.0]])
    assert choose_tokens(logits, Decoding(do_sample=False), [None, None]) == [1, 0]
    draw = lambda: choose_tokens(logits, Decoding(top_k=0), [torch.Generator().manual_seed(s) for s in (5, 6)])
    assert draw() == draw()
    # a one-token nucleus makes sampling greedy
    assert choose_tokens(logits, Decoding(top_k=1), [torch.Generator(), torch.Generator()]) == [1, 0]
    wide = torch.randn(1, 1000, generator=torch.Generator().manual_seed(0))
    top3 = set(torch.topk(wide[0], 3).indices.tolist())
    generator = torch.Generator().manual_seed(0)
    draws = {choose_tokens(wide, Decoding(top_k=3, temperature=5.0), [generator])[0] for _ in range(60)}
    assert draws == top3  # only the k most likely tokens, each of them reachable


@pytest.mark.parametrize(
    "kwargs", [{"max_new_tokens": 0}, {"temperature": 0.0}, {"top_k": -1}, {"top_p": 0.0}, {"top_p": 1.5}]
)
def test_bad_decoding_settings(kwargs):
    with pytest.raises(ValueError):
        Decoding(**kwargs)


def test_decoding_records_its_settings():
    assert Decoding().to_json() == {
        "max_new_tokens": 100,
        "do_sample": True,
        "temperature": 1.0,
        "top_k": 50,
        "top_p": 1.0,
    }
    assert math.isclose(Decoding(top_p=0.9).top_p, 0.9)
