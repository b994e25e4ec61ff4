import json

import pytest

from flextape_bench import tokenization
from flextape_bench.errors import UserError
from flextape_bench.tokenization import encode_continuation, encode_continuations


def _split(tokenizer, prompt, target):
    cont = encode_continuation(tokenizer, prompt, target)
    full = tokenizer(f"{prompt} {target}")["input_ids"]
    assert list(cont.context) + list(cont.target) == full  # exactly the tokens of the joined string
    return cont


@pytest.mark.parametrize("target", ["New York City", "Paris", "1990", "art of painting"])
def test_gemma_target_tokens_are_what_the_target_contributes(gemma, target):
    tok = gemma.tokenizer
    cont = _split(tok, "Marie Waldron was born in", target)
    assert cont.context[0] == tok.bos_token_id
    assert tok.decode(cont.context[1:]) == "Marie Waldron was born in"
    assert tok.decode(cont.target) == f" {target}"
    assert tok.bos_token_id not in cont.target


def test_gemma_lone_space_token_belongs_to_a_number_target(gemma):
    tokens = gemma.tokenizer.convert_ids_to_tokens(_split(gemma.tokenizer, "He was born in", "1990").target)
    assert tokens == ["▁", "1", "9", "9", "0"]


@pytest.mark.parametrize("target", ["New York City", "Clunie", "medicine"])
def test_bpe_target_keeps_its_leading_space(bpe_tokenizer, target):
    cont = _split(bpe_tokenizer, "Judith Matloff was born in", target)
    assert bpe_tokenizer.decode(cont.context) == "Judith Matloff was born in"
    assert bpe_tokenizer.decode(cont.target) == f" {target}"


def test_llama_sentencepiece_boundary(llama_tokenizer):
    tok = llama_tokenizer
    cont = _split(tok, "Marie Waldron was born in", "New York City")
    assert cont.context[0] == tok.bos_token_id
    assert tok.convert_ids_to_tokens(cont.target)[0].startswith("▁")  # no lone "▁", no missing first token
    assert tok.decode(cont.target).strip() == "New York City"


def test_empty_target_is_a_user_error(gemma):
    with pytest.raises(UserError, match="empty target"):
        encode_continuation(gemma.tokenizer, "X was born in", "")


def test_llama_target_of_special_tokens_tokenizes_to_nothing(llama_tokenizer):
    with pytest.raises(
        UserError,
        match=r"target '</s>' after prompt 'X was born in' tokenizes to nothing .* with "
        r"the tokenizer LlamaTokenizer",
    ):
        encode_continuation(llama_tokenizer, "X was born in", llama_tokenizer.eos_token)  # only the joining "▁" left


@pytest.mark.parametrize("tokenizer_name", ["gemma", "bpe_tokenizer", "llama_tokenizer"])
def test_batched_encodings_match_one_call_per_pair(request, tokenizer_name, data_dir, monkeypatch):
    """Real probes and targets of different lengths, some repeated, over several tokenizer calls: each continuation is
    exactly the split of that pair's own tokenization (no padding, nothing shared between the pairs of a call)."""
    fixture = request.getfixturevalue(tokenizer_name)
    tok = getattr(fixture, "tokenizer", fixture)
    records = json.loads((data_dir / "seesaw_cf_P19_P101.json").read_text())[:3]
    pairs = [
        (prompt, r["requested_rewrite"][field]["str"])
        for r in records
        for prompt in r["attribute_prompts"][:4]
        for field in ("target_new", "target_true")
    ]
    pairs.append(("X", "a much longer target than any other in this list, to make the lengths differ"))
    pairs += pairs[:3]  # repeated pairs are tokenized once and returned at each of their places
    monkeypatch.setattr(tokenization, "BLOCK", 5)  # several calls, the last one partial
    batched = encode_continuations(tok, pairs)
    assert len(batched) == len(pairs) == 28
    for (prompt, target), cont in zip(pairs, batched):
        assert cont == _split(tok, prompt, target)


def test_batched_encoding_names_the_empty_target(gemma):
    with pytest.raises(UserError, match="empty target after prompt 'B was born in'"):
        encode_continuations(gemma.tokenizer, [("A was born in", "Paris"), ("B was born in", " ")])


def test_chat_template_renders_the_prompt_as_a_user_turn_the_target_continues(gemma_chat):
    """The context is the chat template's rendering (Gemma's turns, written out here) with its one BOS; the target
    is the same tokens as after the plain prompt; editors' plain encoding is unchanged."""
    tok = gemma_chat.tokenizer
    prompt, target = "Ada Lovelace works in the field of", "physics"
    rendered = f"<bos><start_of_turn>user\n{prompt}<end_of_turn>\n<start_of_turn>model\n"
    assert tok.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    ) == (rendered)
    (cont,) = encode_continuations(tok, [(prompt, target)], chat=True)
    assert list(cont.context) == tok(rendered, add_special_tokens=False)["input_ids"]
    assert cont.context.count(tok.bos_token_id) == 1
    assert cont.target == encode_continuation(tok, prompt, target).target
    assert tok.decode(cont.target) == f" {target}"
    assert encode_continuation(tok, prompt, target).context == tuple(tok(prompt)["input_ids"])
