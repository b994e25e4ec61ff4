"""On-disk cache of pre-edit scores, one file per case, keyed by what determines them: the model's weights and
tokenizer (by content hash), the task spec (by hash), the device type and the scorer version; never by names. A
damaged entry (flextape_bench.checksums) is reported and computed again."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from flextape_bench.cases import CaseScores
from flextape_bench.checksums import read_intact, write_json


def cache_key(weights: str, tokenizer: str, spec_hash: str, device: str, scorer_version: str) -> str:
    payload = json.dumps([weights, tokenizer, spec_hash, device, scorer_version])
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


class PreScoreCache:
    def __init__(self, root: Path, key: str):
        self.path = root / "prescores" / key

    def _file(self, case_id: int) -> Path:
        return self.path / f"case_{case_id}.json"

    def get(self, case_id: int) -> CaseScores | None:
        data = read_intact(self._file(case_id), "scoring the case again")
        return CaseScores.from_json(data) if data is not None else None

    def put(self, case_id: int, scores: CaseScores) -> None:
        write_json(self._file(case_id), scores.to_json())


def generation_key(weights: str, tokenizer: str, device: str, settings: dict, seed: int) -> str:
    """Key of pre-edit generations: the weights and tokenizer, device type, decoding settings (with the EOS ids
    and the generation code's version) and the run seed. Not the task spec: each entry holds its prompts and
    sample count and is checked against the case, so a changed lexicon or metric list keeps the texts."""
    payload = json.dumps([weights, tokenizer, device, settings, seed], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


class PreGenerationCache:
    """Pre-edit texts per case: `{"prompts": [...], "samples": n, "texts": [[...], ...]}`; an entry made for
    other prompts or another sample count is not returned."""

    def __init__(self, root: Path, key: str):
        self.path = root / "pregenerations" / key

    def _file(self, case_id: int) -> Path:
        return self.path / f"case_{case_id}.json"

    def get(self, case_id: int, prompts: tuple[str, ...], samples: int) -> tuple[tuple[str, ...], ...] | None:
        data = read_intact(self._file(case_id), "generating the case's texts again")
        if data is None or data.get("prompts") != list(prompts) or data.get("samples") != samples:
            return None
        return tuple(tuple(texts) for texts in data["texts"])

    def put(self, case_id: int, prompts: tuple[str, ...], samples: int, texts: tuple[tuple[str, ...], ...]) -> None:
        write_json(self._file(case_id), {"prompts": list(prompts), "samples": samples,
                                         "texts": [list(t) for t in texts]})
