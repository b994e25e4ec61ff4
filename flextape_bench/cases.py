"""The data a run works on: edit cases, their probes, and the requests handed to the scorer and editors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Rewrite:
    """The edit: in `prompt.format(subject)`, replace `target_true` with `target_new`."""

    prompt: str  # contains "{}" where the subject goes
    subject: str
    relation: str
    target_true: str
    target_new: str
    target_true_id: str = ""
    target_new_id: str = ""

    @property
    def edit_prompt(self) -> str:
        return self.prompt.replace("{}", self.subject)


@dataclass(frozen=True)
class Probe:
    """A prompt about another entity, scored with the rewrite's two targets; `groups` holds labels like gender."""

    prompt: str
    entity_id: str = ""
    entity_name: str = ""
    groups: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EditCase:
    case_id: int
    rewrite: Rewrite
    probes: tuple[Probe, ...] = ()
    generation_prompts: tuple[str, ...] = ()
    queries: dict[str, Any] = field(default_factory=dict)  # per metric name, what its preparation attached


def distinct_prompts(prompts: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Each prompt once, in order of first appearance (pair files repeat each generation prompt 5 times)."""
    return tuple(dict.fromkeys(prompts))


Group = tuple[str, int]  # a batch group: (kind, case id); see ScoreRequest


def case_group(case_id: int) -> Group:
    """The group of requests that only their own case asks (a metric's: cross-property prompts and candidates)."""
    return ("case", case_id)


def shared_group(owner: int) -> Group:
    """The group of the edit-prompt and probe requests that case `owner` is the first of its file to ask."""
    return ("shared", owner)


@dataclass(frozen=True)
class ScoreRequest:
    """One prompt and the continuations to score after it (they share the prompt's computation). Requests of
    different `group`s never share a batch, and a group is always scored whole, so a request's score does not depend
    on which other requests are scored with it (a batch's shape changes the last bits of its sums) whatever subset
    of cases a run scores (--limit, --samples, chunks, a resumed run, a lost cache entry). Identical requests in one
    group are scored once."""

    prompt: str
    targets: tuple[str, ...]
    group: Group = ("case", 0)


@dataclass(frozen=True)
class Score:
    """Log-likelihood of one continuation: p is the geometric-mean token probability exp(-mean NLL)."""

    n_tokens: int
    sum_nll: float

    @property
    def mean_nll(self) -> float:
        return self.sum_nll / self.n_tokens

    @property
    def p(self) -> float:
        import math

        return math.exp(-self.mean_nll)


@dataclass(frozen=True)
class EditRequest:
    """What an editor receives for one edit."""

    prompt: str  # with "{}" for the subject
    subject: str
    target_new: str
    target_true: str
    case_id: int = -1

    @classmethod
    def from_rewrite(cls, rewrite: Rewrite, case_id: int = -1) -> EditRequest:
        return cls(rewrite.prompt, rewrite.subject, rewrite.target_new, rewrite.target_true, case_id)


@dataclass(frozen=True)
class PairScore:
    """A prompt scored with the rewrite's two targets: d = p_new - p_true."""

    new: Score
    true: Score

    @property
    def d(self) -> float:
        return self.new.p - self.true.p

    def to_json(self) -> dict[str, float | int]:
        return {
            "p_new": self.new.p,
            "p_true": self.true.p,
            "nll_new": self.new.sum_nll,
            "nll_true": self.true.sum_nll,
            "n_new": self.new.n_tokens,
            "n_true": self.true.n_tokens,
        }

    @classmethod
    def from_json(cls, data: dict) -> PairScore:
        return cls(Score(data["n_new"], data["nll_new"]), Score(data["n_true"], data["nll_true"]))


@dataclass(frozen=True)
class CaseScores:
    """One case's scores at one point (pre- or post-edit): the edit prompt, then each probe in order; `generation`:
    the scores of the metrics' own score requests (one Score per target of each request, in order); `texts`: the
    texts the metrics asked for, per prompt one per sample."""

    edit: PairScore
    probes: tuple[PairScore, ...]
    generation: tuple[tuple[Score, ...], ...] = ()
    texts: tuple[tuple[str, ...], ...] = ()

    def to_json(self) -> dict:
        data: dict[str, Any] = {"edit": self.edit.to_json(), "probes": [p.to_json() for p in self.probes]}
        if self.generation:
            data["generation"] = [
                {"n_tokens": [s.n_tokens for s in scores], "sum_nll": [s.sum_nll for s in scores]}
                for scores in self.generation
            ]
        if self.texts:
            data["texts"] = [list(texts) for texts in self.texts]
        return data

    @classmethod
    def from_json(cls, data: dict) -> CaseScores:
        generation = tuple(
            tuple(Score(n, nll) for n, nll in zip(g["n_tokens"], g["sum_nll"], strict=True))
            for g in data.get("generation", ())
        )
        return cls(
            PairScore.from_json(data["edit"]),
            tuple(PairScore.from_json(p) for p in data["probes"]),
            generation,
            tuple(tuple(texts) for texts in data.get("texts", ())),
        )


def _asked(case: EditCase) -> list[tuple[str, tuple[str, str]]]:
    """What every case is scored on: the edit prompt, then each probe, each with (target_new, target_true)."""
    targets = (case.rewrite.target_new, case.rewrite.target_true)
    return [(case.rewrite.edit_prompt, targets)] + [(p.prompt, targets) for p in case.probes]


@dataclass(frozen=True)
class RequestOwners:
    """The batch groups of a task's edit-prompt and probe requests, fixed by its whole data file: each distinct
    request (prompt and targets) belongs to the first case in file order that asks it, and a group is what one case
    owns. The cases of a run, whichever they are, then score each shared request once, in the same batch."""

    owner: dict[tuple[str, tuple[str, ...]], int]
    members: dict[int, tuple[ScoreRequest, ...]]  # owner case id -> its requests, in the order it asks them

    @classmethod
    def of(cls, cases: Sequence[EditCase]) -> RequestOwners:
        """The owners over `cases`: every case of the data file, in file order."""
        owner: dict[tuple[str, tuple[str, ...]], int] = {}
        for case in cases:
            for asked in _asked(case):
                owner.setdefault(asked, case.case_id)
        members: dict[int, list[ScoreRequest]] = {}
        for (prompt, targets), case_id in owner.items():
            members.setdefault(case_id, []).append(ScoreRequest(prompt, targets, shared_group(case_id)))
        return cls(owner, {case_id: tuple(requests) for case_id, requests in members.items()})

    def complete(self, requests: Sequence[ScoreRequest]) -> list[ScoreRequest]:
        """Each distinct request of `requests` once, with every other member of the shared groups they touch
        (owned by cases the run may not score): what a scorer must score for the answers to be those of any run."""
        touched = dict.fromkeys(r.group[1] for r in requests if r.group[0] == "shared")
        return list(dict.fromkeys([*requests, *(m for owner in touched for m in self.members[owner])]))


def score_requests(case: EditCase, owners: RequestOwners | None = None) -> list[ScoreRequest]:
    """The case's edit prompt, then each probe, each with (target_new, target_true): in the shared groups of
    `owners`, or all in the case's own group without it."""
    if owners is None:
        return [ScoreRequest(prompt, targets, case_group(case.case_id)) for prompt, targets in _asked(case)]
    return [
        ScoreRequest(prompt, targets, shared_group(owners.owner[prompt, targets])) for prompt, targets in _asked(case)
    ]


def case_scores(
    case: EditCase, scores: list[tuple[Score, ...]] | tuple[tuple[Score, ...], ...], extra: int = 0
) -> CaseScores:
    """CaseScores from the scorer's answers to `score_requests(case)` followed by `extra` further requests."""
    probes = 1 + len(case.probes)
    if len(scores) != probes + extra:
        raise ValueError(f"case {case.case_id}: {len(scores)} scored requests do not match score_requests(case)")
    return CaseScores(
        PairScore(*scores[0]), tuple(PairScore(*s) for s in scores[1:probes]), tuple(tuple(s) for s in scores[probes:])
    )
