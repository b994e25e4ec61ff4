"""The decoder body as a continuation of cached keys and values, on tiny models of every architecture (sliding
windows shorter than the prefix, left-padded prefixes and an empty one included)."""

import torch

TEXTS = [
    "Yesterday it was raining in the city of London. Marie Waldron was born in New York",
    "A b c d e f g h i j. Danielle Darrieux speaks English",
    "Marie was born",
]
STARTS = [11, 5, 0]  # where each text's continuation starts; 11 is longer than the tiny Mistral's and Gemma's windows


def test_a_continuation_after_cached_keys_and_values_gives_the_whole_texts_hidden_states(tiny):
    rows = [tiny.tokenizer(text)["input_ids"] for text in TEXTS]
    longest, fill = max(map(len, rows)), tiny.tokenizer.pad_token_id
    ids = torch.tensor([row + [fill] * (longest - len(row)) for row in rows])
    mask = torch.tensor([[1] * len(row) + [0] * (longest - len(row)) for row in rows])
    prefix, width = max(STARTS), max(len(row) - start for row, start in zip(rows, STARTS))
    pads = [prefix - start for start in STARTS]
    prefix_mask = [[0] * pad + [1] * start for pad, start in zip(pads, STARTS)]
    with torch.no_grad():
        whole = tiny.body_hidden(input_ids=ids, attention_mask=mask)
        cache = tiny.prefix_cache(
            input_ids=torch.tensor([[fill] * pad + row[:start] for pad, row, start in zip(pads, rows, STARTS)]),
            attention_mask=torch.tensor(prefix_mask),
            position_ids=torch.tensor([[0] * pad + list(range(start)) for pad, start in zip(pads, STARTS)]),
        )
        suffix_mask = [[1] * (len(row) - s) + [0] * (width - len(row) + s) for row, s in zip(rows, STARTS)]
        inputs = dict(
            input_ids=torch.tensor([row[s:] + [fill] * (width - len(row) + s) for row, s in zip(rows, STARTS)]),
            attention_mask=torch.tensor([p + q for p, q in zip(prefix_mask, suffix_mask)]),
            position_ids=torch.tensor([list(range(s, s + width)) for s in STARTS]),
        )
        for _ in range(2):  # the cache is copied, not extended: a second continuation gives the same
            after = tiny.body_hidden_after(cache, **inputs)
            for i, (row, start) in enumerate(zip(rows, STARTS)):
                expected = whole[i, start : len(row)]
                scale = expected.abs().max().item()
                assert torch.allclose(after[i, : len(row) - start], expected, rtol=0, atol=1e-5 * scale)
