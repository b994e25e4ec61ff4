"""Probe genders: recover the boundary between the two gender blocks of each case's probe list.

Seesaw-CF lists a case's probes as two blocks, one per gender (pair files: women first; single-property files:
men first), each of at most POOL_CAP people. A pool of POOL_CAP people or fewer is reused whole, in shuffled
order, by every case with the same target_new; so among the cases sharing a target_new, a boundary k is the one
where the first k probe ids (or the last n - k) are the same set in every case. Counts are in people: a person
probed with several prompts appears in consecutive probes with one id, and a boundary never splits such a run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

POOL_CAP = 100
WIKIDATA_GENDER = {"Q6581097": "male", "Q6581072": "female"}
BLOCK_ORDERS = {"female_first": ("female", "male"), "male_first": ("male", "female")}


@dataclass(frozen=True)
class CaseProbes:
    """What the boundary recovery needs of one case."""

    target_new_id: str
    probe_ids: tuple[str, ...]


def _allowed(ids: Sequence[str]) -> list[int]:
    """Boundaries k that leave at most POOL_CAP people on each side without splitting a person's run."""
    n = len(ids)
    run_starts = [0] + [k for k in range(1, n) if ids[k - 1] != ids[k]] + [n] if n else [0]
    people = len(run_starts) - 1
    return [k for i, k in enumerate(run_starts) if i <= POOL_CAP and people - i <= POOL_CAP]


def _prefix_sets(ids: Sequence[str]) -> list[int]:
    """Entry k identifies the set of ids[:k] regardless of order (sum of the distinct ids' hashes)."""
    seen: set[str] = set()
    signatures = [0]
    for entity in ids:
        signatures.append(signatures[-1] + (hash(entity) if entity not in seen else 0))
        seen.add(entity)
    return signatures


def _same_sets(id_lists: Sequence[Sequence[str]], k: int) -> bool:
    """Whether all cases have the same first-k id set, or all have the same last-(n-k) id set."""
    return len({frozenset(ids[:k]) for ids in id_lists}) == 1 or len({frozenset(ids[k:]) for ids in id_lists}) == 1


def shared_boundary(id_lists: Sequence[Sequence[str]]) -> int | None:
    """The block boundary of cases sharing one target_new (same probe count), or None when it is ambiguous.

    A boundary forced by the size limits is taken as is; otherwise the non-trivial boundaries where the cases'
    first-k (or last n-k) id sets agree are candidates, and exactly one candidate must remain. A lone case has
    nothing to be compared with, so only a forced boundary is known for it.
    """
    allowed = _allowed(id_lists[0])
    if len(allowed) == 1:
        return allowed[0]
    if len(id_lists) < 2:
        return None
    n = len(id_lists[0])
    prefixes = [_prefix_sets(ids) for ids in id_lists]
    suffixes = [_prefix_sets(ids[::-1])[::-1] for ids in id_lists]
    found = [
        k for k in allowed if 0 < k < n and (len({p[k] for p in prefixes}) == 1 or len({s[k] for s in suffixes}) == 1)
    ]
    return found[0] if len(found) == 1 and _same_sets(id_lists, found[0]) else None


def block_boundaries(cases: Sequence[CaseProbes]) -> list[int | None]:
    """Per case, the index where the second gender block starts, or None where it cannot be recovered.

    Cases are compared with the others of the same file that share target_new_id and probe count.
    """
    by_pool: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, case in enumerate(cases):
        by_pool[(case.target_new_id, len(case.probe_ids))].append(i)
    boundaries: list[int | None] = [None] * len(cases)
    for members in by_pool.values():
        k = shared_boundary([cases[i].probe_ids for i in members])
        for i in members:
            boundaries[i] = k
    return boundaries


def probe_genders(order: str, cases: Sequence[CaseProbes]) -> list[tuple[str, ...] | None]:
    """Per case, one gender per probe ("female"/"male"), or None where unknown.

    `order` is a ProbeSpec.gender value: female_first / male_first (two blocks), target_new (every probe has the
    gender target_new stands for), none (always unknown).
    """
    if order == "target_new":
        return [_same_gender(WIKIDATA_GENDER.get(case.target_new_id), len(case.probe_ids)) for case in cases]
    if order not in BLOCK_ORDERS:
        return [None] * len(cases)
    first, second = BLOCK_ORDERS[order]
    return [
        None if k is None else (first,) * k + (second,) * (len(case.probe_ids) - k)
        for case, k in zip(cases, block_boundaries(cases))
    ]


def _same_gender(gender: str | None, n: int) -> tuple[str, ...] | None:
    return None if gender is None else (gender,) * n
