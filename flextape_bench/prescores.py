"""On-disk caches of pre-edit scores and texts, one file per case, keyed by what determines them: the model state
(`model_state`: weights, tokenizer and config by content hash, device type, torch and transformers versions, and the
chat template where prompts go through it), the task spec and data file (by hash) and the scorer version; never by names. Each entry also holds what it answers (the
scored prompts and targets; the generation prompts), and is served only for exactly those. A damaged entry
(flextape_bench.checksums) is reported and computed again."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from flextape_bench.cases import CaseScores, ScoreRequest
from flextape_bench.checksums import read_intact, write_json


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def cache_key(model_state: dict[str, str], spec_hash: str, data_sha256: str, scorer_version: str) -> str:
    """Key of pre-edit scores: the model state, the task spec, the data file's content and the scorer version."""
    return _key(model_state, spec_hash, data_sha256, scorer_version)


class PreScoreCache:
    def __init__(self, root: Path, key: str):
        self.path = root / "prescores" / key

    def _file(self, case_id: int) -> Path:
        return self.path / f"case_{case_id}.json"

    def get(self, case_id: int, requests: list[ScoreRequest]) -> CaseScores | None:
        """The case's scores, if its entry was made for exactly these prompts and targets."""
        data = read_intact(self._file(case_id), "scoring the case again")
        if data is None or data.get("requests") != _requests_json(requests):
            return None
        return CaseScores.from_json(data["scores"])

    def put(self, case_id: int, requests: list[ScoreRequest], scores: CaseScores) -> None:
        write_json(self._file(case_id), {"requests": _requests_json(requests), "scores": scores.to_json()})


def _requests_json(requests: list[ScoreRequest]) -> list[list]:
    return [[r.prompt, list(r.targets)] for r in requests]


def generation_key(model_state: dict[str, str], settings: dict, seed: int) -> str:
    """Key of pre-edit generations: the model state, decoding settings (with the EOS ids and the generation code's
    version) and the run seed. Not the task spec: each entry holds its prompts and sample count and is checked
    against the case, so a changed lexicon or metric list keeps the texts."""
    return _key(model_state, settings, seed)


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
        write_json(
            self._file(case_id), {"prompts": list(prompts), "samples": samples, "texts": [list(t) for t in texts]}
        )
