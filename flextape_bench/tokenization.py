"""The token boundary between a prompt and a target continuation, shared by scoring and editors.

A target's tokens are exactly those it contributes to `tokenizer(prompt + " " + target)`: found from character
offsets (a token belongs to the target when its span reaches past the prompt), never by counting tokens of the
target encoded alone. BOS and other special tokens stay in the context.

With `chat`, what the model reads for a prompt (scoring, generation) is the tokenizer's chat template's rendering of
it as a user turn followed by the opening of the model's turn, which the target continues (`model_text`: the one
place that decides it); editors always read the plain prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from transformers import PreTrainedTokenizerBase

from flextape_bench.errors import UserError


class EmptyTargetError(UserError):
    """A target that contributes no token after its prompt."""


@dataclass(frozen=True)
class Continuation:
    context: tuple[int, ...]  # token ids before the target (BOS included where the tokenizer adds one)
    target: tuple[int, ...]  # token ids the target contributes


def join(prompt: str, target: str) -> str:
    return f"{prompt} {target}"


def model_text(tokenizer: PreTrainedTokenizerBase, prompt: str, chat: bool) -> str:
    """The text the model reads for `prompt`: the prompt; with `chat`, the chat template's rendering of it as a user
    turn with the model's turn opened (`add_generation_prompt`). The rendering holds its special tokens (BOS)
    itself, so it is tokenized with `add_special_tokens=not chat`."""
    if not chat:
        return prompt
    turn = [{"role": "user", "content": prompt}]
    return cast(str, tokenizer.apply_chat_template(turn, tokenize=False, add_generation_prompt=True))


BLOCK = 4096  # (prompt, target) pairs per tokenizer call in encode_continuations


def encode_continuation(tokenizer: PreTrainedTokenizerBase, prompt: str, target: str) -> Continuation:
    """Split `tokenizer(prompt + " " + target)` into the prompt's tokens and the target's tokens."""
    return encode_continuations(tokenizer, [(prompt, target)])[0]


def encode_continuations(
    tokenizer: PreTrainedTokenizerBase, pairs: Sequence[tuple[str, str]], chat: bool = False
) -> list[Continuation]:
    """`encode_continuation` of every (prompt, target) pair, in order, each prompt as the model reads it
    (`model_text`). Each distinct pair is tokenized once (probe pools and candidate lists repeat across cases), in
    batched tokenizer calls."""
    if not tokenizer.is_fast:
        raise UserError(
            f"tokenizer {type(tokenizer).__name__} gives no character offsets; load the model's fast tokenizer"
        )
    for prompt, target in pairs:
        if not target.strip():
            raise EmptyTargetError(
                f"empty target after prompt {prompt!r}; fix the target in the data file or the task's templates.target"
            )
    special = set(tokenizer.all_special_ids)
    distinct = list(dict.fromkeys(pairs))
    texts = {prompt: model_text(tokenizer, prompt, chat) for prompt, _ in distinct}
    encoded: dict[tuple[str, str], Continuation] = {}
    for start in range(0, len(distinct), BLOCK):
        block = distinct[start : start + BLOCK]
        encoding = tokenizer(
            [join(texts[prompt], target) for prompt, target in block],
            return_offsets_mapping=True,
            add_special_tokens=not chat,
        )
        for (prompt, target), ids, offsets in zip(block, encoding["input_ids"], encoding["offset_mapping"]):
            encoded[prompt, target] = _split(tokenizer, special, ids, offsets, texts[prompt], target)
    return [encoded[pair] for pair in pairs]


def _split(
    tokenizer: PreTrainedTokenizerBase,
    special: set[int],
    ids: Sequence[int],
    offsets: Sequence[tuple[int, int]],
    prompt: str,
    target: str,
) -> Continuation:
    """The Continuation of one encoding of `prompt + " " + target` (`special`: the tokenizer's special ids)."""
    boundary = len(prompt)
    first = next(
        (i for i, (tok, (_, end)) in enumerate(zip(ids, offsets)) if end > boundary and tok not in special),
        len(ids),
    )
    # special tokens are no target (an EOS a tokenizer appends); a target whose tokens reach none of its own
    # characters, past the joining space, tokenizes to nothing (a lone "▁" is all that is left of a target made of
    # special tokens or of characters the tokenizer drops)
    kept = [(tok, end) for tok, (_, end) in zip(ids[first:], offsets[first:]) if tok not in special]
    if not any(end > boundary + 1 for _, end in kept):
        name = type(tokenizer).__name__ + (f" ({tokenizer.name_or_path})" if tokenizer.name_or_path else "")
        raise EmptyTargetError(
            f"target {target!r} after prompt {prompt!r} tokenizes to nothing (special tokens "
            f"and dropped characters do not count) with the tokenizer {name}; fix the target in "
            "the data file or the task's templates.target"
        )
    return Continuation(tuple(ids[:first]), tuple(tok for tok, _ in kept))
