"""The subject's last token, located from offsets, on GPT-2-style BPE, Llama SentencePiece and Gemma tokenizers."""

import pytest

from flextape_bench.editors.subject import fill, last_subject_token

PROMPTS = ["{}'s field of work is", "The mother tongue of {} is", "Because it rained. {} was born in"]


def _check(tokenizer, template, subject):
    item = fill(template, subject)
    ids = tokenizer(item.text)["input_ids"]
    index = last_subject_token(tokenizer, item)
    assert tokenizer.decode(ids[: index + 1]).rstrip().endswith(subject)
    assert not tokenizer.decode(ids[:index]).rstrip().endswith(subject)
    return tokenizer.convert_ids_to_tokens(ids), index


def test_gemma_hand_checked(gemma):
    tokens, index = _check(gemma.tokenizer, "{} was born in", "Danielle Darrieux")
    assert tokens[: index + 2] == ["<bos>", "Dan", "ielle", "▁Dar", "rie", "ux", "▁was"]
    assert index == 5  # BOS counted, nothing after the subject read as its key


@pytest.mark.parametrize("template", PROMPTS)
def test_every_tokenizer_family(gemma, bpe_tokenizer, llama_tokenizer, template):
    for tokenizer in (gemma.tokenizer, bpe_tokenizer, llama_tokenizer):
        _check(tokenizer, template, "John James Rickard Macleod")


def test_bpe_hand_checked(bpe_tokenizer):
    tokens, index = _check(bpe_tokenizer, "The mother tongue of {} is", "Danielle Darrieux")
    assert tokens[index + 1] == "Ġis" and tokens[index].endswith("ux")


def test_llama_hand_checked(llama_tokenizer):
    tokens, index = _check(llama_tokenizer, "{} was born in", "Marie Waldron")
    assert tokens[0] == "<s>" and tokens[index] == "ron" and tokens[index + 1] == "▁was"
