"""On-disk cache of pre-edit scores, one file per case, keyed by what determines them: the model's weights and
tokenizer (by content hash), the task spec (by hash), the device type and the scorer version; never by names."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from flextape_bench.cases import CaseScores
from flextape_bench.results import read_json, write_json


def cache_key(weights: str, tokenizer: str, spec_hash: str, device: str, scorer_version: str) -> str:
    payload = json.dumps([weights, tokenizer, spec_hash, device, scorer_version])
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


class PreScoreCache:
    def __init__(self, root: Path, key: str):
        self.path = root / "prescores" / key

    def _file(self, case_id: int) -> Path:
        return self.path / f"case_{case_id}.json"

    def get(self, case_id: int) -> CaseScores | None:
        path = self._file(case_id)
        return CaseScores.from_json(read_json(path)) if path.exists() else None

    def put(self, case_id: int, scores: CaseScores) -> None:
        write_json(self._file(case_id), scores.to_json())
