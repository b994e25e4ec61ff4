"""One run: task specs -> cases -> each metric's preparation -> pre-edit answers (cached) -> edits in chunks ->
post-edit answers -> restore -> metrics -> results tree and summary tables. Everything the user gave is validated
before the model loads.

The runner knows metrics only through `metrics.base.Metric`: it collects every metric's requests per case, runs them
by type (scoring, generation), and hands each metric the answers to its own requests. How a chunk is executed is
decided here too: in this process, or shared out over worker processes (`flextape_bench.distributed` only carries
the commands and answers)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import itertools
import logging
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import flextape_bench
from flextape_bench import distributed, models
from flextape_bench.cases import (
    CaseScores,
    EditCase,
    EditRequest,
    RequestOwners,
    Score,
    ScoreRequest,
    case_scores,
    score_requests,
)
from flextape_bench.checksums import sha256_of
from flextape_bench.distributed import Workers
from flextape_bench.editors import (
    EDITORS,
    Editor,
    EditorContext,
    WeightDelta,
    check_overrides,
    load_hparams,
    parse_overrides,
)
from flextape_bench.editors.hparams import hparams_file
from flextape_bench.errors import UserError
from flextape_bench.generation import (
    GENERATION_VERSION,
    Decoding,
    GenerationRequest,
    TextGenerator,
    derive_seed,
    eos_token_ids,
)
from flextape_bench.memory import (
    AUTO,
    MAX_BATCH_TOKENS,
    MAX_HALVINGS,
    Shape,
    fitting_tokens,
    is_out_of_memory,
    model_free_bytes,
)
from flextape_bench.metrics import METRICS, Metric, Preparation, Prepared
from flextape_bench.models.adapter import ModelAdapter
from flextape_bench.models.loading import check_device
from flextape_bench.paths import cache_dir
from flextape_bench.prescores import PreGenerationCache, PreScoreCache, cache_key, generation_key
from flextape_bench.progress import progress_bar
from flextape_bench.records import CaseRecord, case_record
from flextape_bench.results import RunDir, check_output, open_run
from flextape_bench.scoring import SCORER_VERSION, Scorer
from flextape_bench.tables import write_summary
from flextape_bench.tasks import TaskSpec, load_cases, resolve_data_file, select_tasks
from flextape_bench.tasks.data import data_notes
from flextape_bench.tasks.spec import metric_options
from flextape_bench.tokenization import EmptyTargetError, encode_continuation
from flextape_bench.weights import applied_delta, execution_device, unrepresented_share

logger = logging.getLogger(__name__)

SCORING_ROUND = 8  # cases scored, then kept (cached or written), together: a stop loses at most one round's scoring


@dataclass
class RunOptions:
    """Everything a run takes from the command line."""

    model: str = models.DEFAULT_MODEL
    editor: str = "none"
    tasks: Sequence[str] = ("all",)
    limit: int | None = None
    samples: Mapping[str, Sequence[int]] | None = None  # --samples: case positions in the data file, per task
    num_edits: int | None = None  # edits per chunk; None = the whole task in one batch (the CLI: --num-edits all)
    hparams: Sequence[str] = ()
    seed: int = 0
    device: str = "auto"  # auto: cuda where torch sees one, else cpu; spread: over GPUs, CPU memory and disk
    dtype: str = "auto"
    max_memory: str | None = None  # --max-memory with --device spread, e.g. "0=20GiB,cpu=60GiB"
    offload_folder: Path | None = None  # where --device spread offloads weights to disk
    model_args: Mapping[str, Any] = field(default_factory=dict)  # --model-args for from_pretrained
    apply_chat_template: bool = False  # score and generate through the tokenizer's chat template
    data_dir: Path | None = None
    output: Path = Path("results")
    include_paths: Sequence[Path] = ()
    batch_tokens: int | str = AUTO  # padded tokens per scoring and generation batch, or "auto" (fit free memory)
    max_batch_tokens: int = MAX_BATCH_TOKENS  # the most "auto" picks
    resume: bool = True
    sequential: bool = False  # keep each chunk's edit while editing the next chunks
    lexicons: Sequence[Path] = ()  # --lexicon: flaw lexicon files applied over each task's own lexicon
    cache: Path = field(default_factory=cache_dir)


@dataclass
class PreparedTask:
    spec: TaskSpec
    cases: list[EditCase]
    data_sha256: str  # of the data file the cases were read from (stand-ins and files without a declared sha256 too)
    prepared: list[tuple[Preparation, Prepared]] = field(default_factory=list)  # in order, without their cases
    data_notes: tuple[str, ...] = ()  # a stand-in read, a file no checksum verifies (`tasks.data.data_notes`)
    owners: RequestOwners = field(default_factory=lambda: RequestOwners({}, {}))  # over every case of the file

    @property
    def missing(self) -> list[str]:
        """What the run of this task will lack or not verify: its data file's notes, then its preparations'."""
        return [*self.data_notes, *(note for _, prepared in self.prepared for note in prepared.missing)]

    @property
    def metrics(self) -> list[tuple[str, Metric]]:
        return [(name, METRICS.get(name)) for name in self.spec.metrics]

    def generators(self) -> list[tuple[Metric, Decoding]]:
        """The metrics that ask for texts, with their decoding."""
        found = [(metric, metric.decoding(self.spec)) for _, metric in self.metrics]
        return [(metric, decoding) for metric, decoding in found if decoding is not None]

    def score_requests(self, case: EditCase) -> list[ScoreRequest]:
        """The case's edit prompt and probes (in the task's shared groups), then every metric's own score requests,
        in metric order."""
        return score_requests(case, self.owners) + [r for _, m in self.metrics for r in m.score_requests(case)]

    def answers(self, case: EditCase, scores: CaseScores) -> dict[str, CaseScores]:
        """Per metric, `scores` with only the answers to its own requests in `generation` and `texts`."""
        out, scored, generated = {}, 0, 0
        for name, metric in self.metrics:
            n_scored = len(metric.score_requests(case))
            n_texts = len(metric.text_requests(case)[0]) if metric.decoding(self.spec) is not None else 0
            out[name] = dataclasses.replace(
                scores,
                generation=scores.generation[scored : scored + n_scored],
                texts=scores.texts[generated : generated + n_texts],
            )
            scored, generated = scored + n_scored, generated + n_texts
        return out


def _check_flags(options: RunOptions) -> None:
    """Counts out of range and flags that contradict each other (nothing needs a model or a file here)."""
    if isinstance(options.batch_tokens, str) and options.batch_tokens != AUTO:
        raise UserError(f"--batch-tokens must be {AUTO} or a positive integer, got {options.batch_tokens!r}")
    batch_tokens = None if isinstance(options.batch_tokens, str) else options.batch_tokens
    for flag, value in (
        ("--limit", options.limit),
        ("--num-edits", options.num_edits),
        ("--batch-tokens", batch_tokens),
        ("--max-batch-tokens", options.max_batch_tokens),
    ):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be a positive integer, got {value}")
    if options.samples is not None:
        if options.limit is not None:
            raise UserError("--samples and --limit both choose cases; give one of them")
        for task, positions in options.samples.items():
            if not positions or len(set(positions)) != len(positions) or min(positions) < 0:
                raise UserError(
                    f"--samples: {task}: the case positions must be a non-empty list of distinct "
                    f"integers of 0 or more, got {list(positions)[:10]}"
                )
    if options.sequential and options.num_edits is None:
        raise UserError(
            "--sequential needs chunks: with --num-edits all each task is edited in one chunk, so there is no "
            "earlier chunk to keep; give --num-edits K (1 = one edit at a time) or drop --sequential"
        )


def prepare_tasks(options: RunOptions) -> list[PreparedTask]:
    """Select the tasks (names, groups, globs, spec files), resolve each one's data file and build its cases (no
    model needed)."""
    index, names = select_tasks(list(options.tasks), options.include_paths)
    samples = options.samples or {}
    unknown = sorted(set(samples) - set(names))
    if unknown:
        raise UserError(
            f"--samples names {', '.join(unknown)}, which --tasks does not run; the tasks are {', '.join(names)}"
        )
    prepared = []
    for name in names:
        spec = index.spec(name)
        path = resolve_data_file(spec, options.data_dir, options.cache)
        # the first --limit cases own the same groups as in the whole file (a request's first asker is among them);
        # --samples reads the whole file, so the groups of the cases it picks are the whole file's
        read = load_cases(spec, path, options.limit)
        cases = _chosen(read, samples.get(name), path)
        notes = tuple(data_notes(spec.dataset, path))
        task = PreparedTask(spec, cases, sha256_of(path), data_notes=notes, owners=RequestOwners.of(read))
        prepared.append(_prepared(task, options))
    used = {id(preparation) for task in prepared for preparation, _ in task.prepared}
    for preparation in _distinct(entry.obj.preparation for entry in METRICS.entries()):
        preparation.check_run(options, id(preparation) in used)
    return prepared


def checklist(tasks: Sequence[PreparedTask]) -> str:
    """What the run will lack or not verify, each note once with the tasks it concerns, or "" when nothing."""
    concerns: dict[str, list[str]] = {}
    for task in tasks:
        for note in task.missing:
            concerns.setdefault(note, []).append(task.spec.task)
    lines = [f"  - {', '.join(names)}: {note}" for note, names in concerns.items()]
    return "before the run, what will be missing or unverified:\n" + "\n".join(lines) if lines else ""


def _distinct(preparations: Iterator[Preparation | None]) -> list[Preparation]:
    """Each preparation once, in order (several metrics may share one)."""
    return list({id(p): p for p in preparations if p is not None}.values())


def _prepared(task: PreparedTask, options: RunOptions) -> PreparedTask:
    """The task after each of its metrics' preparations, in metric order, each once with the metrics sharing it."""
    cases, done = task.cases, []
    for preparation in _distinct(metric.preparation for _, metric in task.metrics):
        users = [metric for _, metric in task.metrics if metric.preparation is preparation]
        result = preparation.prepare(task.spec, cases, users, options)
        cases = result.cases
        done.append((preparation, dataclasses.replace(result, cases=[])))
    return dataclasses.replace(task, cases=cases, prepared=done)


def _chosen(cases: list[EditCase], positions: Sequence[int] | None, path: Path) -> list[EditCase]:
    """The cases at `positions` (file order, as given), or all of them. Cases are read from the whole file first,
    so that what depends on other cases (probe genders) is the same as in a full run."""
    if positions is None:
        return cases
    if max(positions) >= len(cases):
        raise UserError(
            f"--samples: case position {max(positions)} is past the end of {path} ({len(cases)} cases, "
            f"positions 0-{len(cases) - 1})"
        )
    return [cases[i] for i in positions]


def _check_targets(tasks: Sequence[PreparedTask], adapter: ModelAdapter) -> None:
    """Every target, and every target a metric asks to check, gives at least one token with the model's tokenizer:
    checked as soon as the tokenizer is there, before the run directory is created."""
    for task in tasks:
        targets = [
            (f"case_id {case.case_id}: fields.{field}", case.rewrite.edit_prompt, getattr(case.rewrite, field))
            for case in task.cases
            for field in ("target_new", "target_true")
        ]
        targets += [target for _, metric in task.metrics for target in metric.checked_targets(task.cases)]
        for where, prompt, target in targets:
            try:
                encode_continuation(adapter.tokenizer, prompt, target)
            except EmptyTargetError as exc:
                raise UserError(f"task {task.spec.task}: {where}: {exc}") from exc


def _batch_tokens(options: RunOptions, adapter: ModelAdapter, tasks: Sequence[PreparedTask]) -> dict[str, Any]:
    """The padded tokens per batch (`used`) and how they were chosen, for timing.json. `auto`: what fits the free
    memory of the model's devices for the run's longest scoring row and, where metrics ask for texts, its longest
    generation row (memory.fitting_tokens), at most --max-batch-tokens; printed once."""
    if options.batch_tokens != AUTO:
        return {"option": options.batch_tokens, "used": options.batch_tokens}
    shape, dtype_bytes, cap = Shape.of(adapter.model.config), adapter.dtype.itemsize, options.max_batch_tokens
    free = model_free_bytes(adapter)
    scorer = Scorer(adapter)
    longest = scorer.longest_row([r for task in tasks for case in task.cases for r in task.score_requests(case)])
    budgets = [fitting_tokens(free, shape, max(longest, 1), dtype_bytes, scorer.head_chunk, cap)]
    for task in tasks:
        for metric, decoding in task.generators() if task.cases else ():
            generator = TextGenerator(adapter, decoding)
            length = generator.longest_row([p for case in task.cases for p in metric.text_requests(case)[0]])
            budgets.append(fitting_tokens(free, shape, length, dtype_bytes, generator.max_batch, cap, kv_cache=True))
    used = min(budgets)
    logger.info(f"batch tokens: {AUTO} -> {used} ({free / 2**30:.1f} GiB free)")
    return {"option": AUTO, "max": cap, "used": used}  # not the free memory: config.json stays the same on a rerun


@contextlib.contextmanager
def _memory_advice(doing: str, advice: str):
    """Running out of memory while `doing` becomes one UserError saying which flag avoids it."""
    try:
        yield
    except (RuntimeError, MemoryError) as exc:
        if not is_out_of_memory(exc):
            raise
        raise UserError(f"out of memory while {doing}; {advice}") from exc


@functools.cache
def _source_commit() -> str | None:
    """The git commit of the checkout this package runs from (with `-dirty` when tracked files differ from it), or
    None for an installed package or without git."""
    root = Path(flextape_bench.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    command = ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=40", "--exclude=*"]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict[str, str]:
    import transformers

    return {
        "flextape_bench": flextape_bench.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def model_state(adapter: ModelAdapter, weights: str) -> dict[str, str]:
    """What, besides the inputs, determines a score or a text: weights, tokenizer and config (by content hash), the
    device type, the versions of the code that computes the forward pass and, where prompts go through it, the
    chat template (only then, so that other runs keep their cache keys)."""
    versions = _versions()
    return {
        "weights": weights,
        "tokenizer": adapter.tokenizer_fingerprint,
        "config": adapter.config_fingerprint,
        "device": adapter.input_device.type,
        "torch": versions["torch"],
        "transformers": versions["transformers"],
    } | _chat_template(adapter)


def _chat_template(adapter: ModelAdapter) -> dict[str, str]:
    """{"chat_template": sha256 of the template} where scoring and generation go through it, else nothing."""
    if not adapter.chat_template:
        return {}
    return {"chat_template": hashlib.sha256(str(adapter.tokenizer.chat_template).encode()).hexdigest()}


def _case_record(task: PreparedTask, case: EditCase, pre: CaseScores, post: CaseScores, chunk: int) -> CaseRecord:
    """The case file's record (records.CaseRecord): each metric's own record sections and its case values."""
    before, after = task.answers(case, pre), task.answers(case, post)
    sections = {key: value for _, metric in task.metrics for key, value in metric.record(case).items()}
    values = {name: metric.case(case, before[name], after[name]) for name, metric in task.metrics}
    return case_record(case, chunk, sections, values, pre, post)


def _samples(task: PreparedTask, record: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """samples.jsonl lines of one case: the edit prompt, then each probe, with pre- and post-edit scores; then each
    metric's own lines."""
    rewrite = record["rewrite"]
    prompts = [(rewrite["prompt"].replace("{}", rewrite["subject"]), {})] + [(p["prompt"], p) for p in record["probes"]]
    pre = [record["pre"]["edit"], *record["pre"]["probes"]]
    post = [record["post"]["edit"], *record["post"]["probes"]]
    for i, ((prompt, probe), a, b) in enumerate(zip(prompts, pre, post)):
        yield {
            "case_id": record["case_id"],
            "kind": "edit" if i == 0 else "probe",
            "prompt": prompt,
            "target_new": rewrite["target_new"],
            "target_true": rewrite["target_true"],
            "entity_id": probe.get("entity_id", ""),
            "groups": probe.get("groups", {}),
            "pre": a,
            "post": b,
        }
    for _, metric in task.metrics:
        yield from metric.samples(record)


class Runner:
    """Edits and scores one run's tasks. `workers`: rank 0's handle on the other processes of a distributed run
    (None: this process alone); the other ranks' runners have no `run` directory."""

    def __init__(
        self,
        adapter: ModelAdapter,
        editor: Editor,
        run: RunDir | None,
        options: RunOptions,
        weights: str,
        batch_tokens: int,
        workers: Workers | None = None,
    ):
        self.adapter, self.editor, self.run, self.options, self.workers = adapter, editor, run, options, workers
        self.scorer = Scorer(
            adapter, batch_tokens=batch_tokens, halvings=MAX_HALVINGS if options.batch_tokens == AUTO else 0
        )
        self.weights = weights
        self.model_state = model_state(adapter, weights)
        self.eos_ids = eos_token_ids(adapter)

    def _batch_advice(self, doing: str):
        """Out of memory in a scoring or generation batch: `--batch-tokens` bounds it (not part of the run's
        identity, so the same command with a smaller value resumes the run). `auto` tells the value it came to."""
        tokens = self.scorer.batch_tokens
        now = f"{AUTO} -> {tokens}" if self.options.batch_tokens == AUTO else tokens
        return _memory_advice(
            doing,
            f"lower --batch-tokens (now {now}), e.g. --batch-tokens {max(tokens // 2, 1)}; "
            "the run resumes where it stopped",
        )

    def _score_cases(
        self,
        task: PreparedTask,
        cases: Sequence[EditCase],
        desc: str,
        delta: WeightDelta | None = None,
        shared: bool = True,
    ) -> Iterator[list[tuple[EditCase, CaseScores]]]:
        """Each case with its scores (edit prompt, probes, then the metrics' own requests), in rounds of
        `SCORING_ROUND` cases, each yielded as soon as it is scored so that the caller can keep it. Each distinct
        request is scored once, in its whole group (`RequestOwners.complete`): a group scored in an earlier round is
        not scored again, so no score depends on the rounds. With worker processes and `shared`, the scoring is
        shared out over them, and they add `delta` (the edit applied to this process's model) to their weights."""
        known: dict[ScoreRequest, tuple[Score, ...]] = {}
        for start in range(0, len(cases), SCORING_ROUND):
            batch = cases[start : start + SCORING_ROUND]
            requests = [task.score_requests(case) for case in batch]
            distinct = [r for r in task.owners.complete([r for rs in requests for r in rs]) if r not in known]
            part = f"{desc}, cases {start + 1}-{start + len(batch)} of {len(cases)}"
            with self._batch_advice(f"scoring ({desc})"):
                if self.workers is None or not shared:
                    answers = self.scorer.score(distinct, desc=part)
                else:
                    answers = self._shared_scores(self.workers, distinct, delta or {}, desc)
            known.update(zip(distinct, answers))
            yield [
                (case, case_scores(case, [known[r] for r in rs], len(rs) - 1 - len(case.probes)))
                for case, rs in zip(batch, requests)
            ]

    def _shared_scores(
        self, workers: Workers, requests: Sequence[ScoreRequest], delta: WeightDelta, desc: str
    ) -> list[tuple[Score, ...]]:
        """`scorer.score(requests)` shared out: every process scores every `size`-th of this scorer's batches, the
        others with `delta` added to their weights (this process has it applied already), so that every score
        comes from the same batch as in a one-process run."""
        batches = self.scorer.batches(requests)
        shares = [(batches[rank :: workers.size],) for rank in range(workers.size)]
        cpu_delta = {name: tensor.cpu() for name, tensor in delta.items()}
        answers = workers.ask("score", (cpu_delta, desc), shares, lambda mine: list(self.scorer.scored(mine, desc)))
        return self.scorer.collect(requests, itertools.chain.from_iterable(answers))

    def score_batches(
        self, batches: Sequence[Any], desc: str, delta: WeightDelta
    ) -> list[tuple[tuple[int, int], Score]]:
        """A worker process's share of a distributed run's scoring: `Scorer.scored(batches)` with `delta` applied."""
        with applied_delta(self.adapter.model, delta), self._batch_advice(f"scoring ({desc})"):
            return list(self.scorer.scored(batches))

    def prescores(self, task: PreparedTask) -> dict[int, CaseScores]:
        """Pre-edit scores of every case, from the cache where present; the rest computed and cached."""
        key = cache_key(self.model_state, task.spec.spec_hash, task.data_sha256, SCORER_VERSION)
        cache = PreScoreCache(self.options.cache, key)
        found = {case.case_id: cache.get(case.case_id, task.score_requests(case)) for case in task.cases}
        missing = [case for case in task.cases if found[case.case_id] is None]
        if missing:
            for scored in self._score_cases(task, missing, f"{task.spec.task}: pre-edit scores"):
                for case, scores in scored:  # kept round by round: a stop loses at most one round
                    cache.put(case.case_id, task.score_requests(case), scores)
                    found[case.case_id] = scores
        logger.info(
            f"{task.spec.task}: pre-edit scores for {len(task.cases) - len(missing)} of {len(task.cases)} "
            f"cases from the cache {cache.path}"
        )
        return found  # type: ignore[return-value]

    def generation_settings(self, decoding: Decoding) -> dict[str, Any]:
        """What determines a text besides its prompt and seed: decoding, EOS ids, generation code."""
        return {
            "decoding": decoding.to_json(),
            "eos_token_ids": list(self.eos_ids),
            "generation_version": GENERATION_VERSION,
        }

    def _generate(
        self, metric: Metric, decoding: Decoding, cases: Sequence[EditCase], desc: str
    ) -> list[tuple[tuple[str, ...], ...]]:
        """Each case's texts of `metric`, per prompt one per sample. The seed of a text depends on the run seed, the
        case id, the prompt and the sample index only, so pre- and post-edit texts share their draws."""
        generator = TextGenerator(self.adapter, decoding, self.scorer.batch_tokens, eos_ids=self.eos_ids)
        asked = [metric.text_requests(case) for case in cases]
        requests = [
            GenerationRequest(prompt, derive_seed(self.options.seed, case.case_id, prompt, s))
            for case, (prompts, samples) in zip(cases, asked)
            for prompt in prompts
            for s in range(samples)
        ]
        with self._batch_advice(f"generating ({desc})"):
            texts = iter(g.text for g in generator.generate(requests, desc=desc))
        return [tuple(tuple(next(texts) for _ in range(samples)) for _ in prompts) for prompts, samples in asked]

    def _texts(self, task: PreparedTask, cases: Sequence[EditCase], desc: str) -> list[tuple[tuple[str, ...], ...]]:
        """Each case's texts: those of every metric that asks for texts, in metric order."""
        out: list[tuple[tuple[str, ...], ...]] = [()] * len(cases)
        for metric, decoding in task.generators():
            out = [a + b for a, b in zip(out, self._generate(metric, decoding, cases, desc))]
        return out

    def pregenerations(self, task: PreparedTask) -> dict[int, tuple[tuple[str, ...], ...]]:
        """Pre-edit texts of every case, from the cache where present; the rest generated and cached."""
        out: dict[int, tuple[tuple[str, ...], ...]] = {case.case_id: () for case in task.cases}
        for metric, decoding in task.generators():
            key = generation_key(self.model_state, self.generation_settings(decoding), self.options.seed)
            cache = PreGenerationCache(self.options.cache, key)
            asked = {case.case_id: metric.text_requests(case) for case in task.cases}
            found = {case_id: cache.get(case_id, *asked[case_id]) for case_id in asked}
            missing = [case for case in task.cases if found[case.case_id] is None]
            if missing:
                for case, texts in zip(
                    missing, self._generate(metric, decoding, missing, f"{task.spec.task}: pre-edit texts")
                ):
                    cache.put(case.case_id, *asked[case.case_id], texts)
                    found[case.case_id] = texts
            logger.info(
                f"{task.spec.task}: pre-edit texts for {len(task.cases) - len(missing)} of "
                f"{len(task.cases)} cases from the cache {cache.path}"
            )
            out = {case_id: texts + found[case_id] for case_id, texts in out.items()}  # type: ignore[operator]
        return out

    def _edit(self, name: str, chunk: Sequence[EditCase], index: int, n_chunks: int, kept: WeightDelta) -> WeightDelta:
        """The edit of chunk `index` (seeded with seed + index, computed on the model carrying `kept`) plus `kept`."""
        torch.manual_seed(self.options.seed + index)
        fewer = (
            f"edit fewer at once, e.g. --num-edits {len(chunk) // 2}"
            if len(chunk) > 1
            else "a single edit does not fit: use --dtype bfloat16, or --device spread (GPUs, then CPU, then disk)"
        )
        with (
            applied_delta(self.adapter.model, kept),
            _memory_advice(
                f"editing ({self.options.editor}, {name} chunk {index + 1}/{n_chunks}: "
                f"{len(chunk)} edit{'s' if len(chunk) > 1 else ''} at once)",
                fewer,
            ),
        ):
            delta = self.editor.compute_delta([EditRequest.from_rewrite(c.rewrite, c.case_id) for c in chunk])
        undeclared = sorted(set(delta) - set(self.editor.declared_parameters()))
        if undeclared:
            raise RuntimeError(f"editor {self.options.editor} changed undeclared parameters {undeclared}")
        if self.adapter.dtype != torch.float32:
            lost = unrepresented_share(self.adapter.model, delta)
            if lost:
                logger.warning(
                    f"warning: {name} chunk {index + 1}/{n_chunks}: {lost:.1%} of the weight changes the "
                    f"edit asked for round away in {self.adapter.dtype}; edit in float32 (--dtype "
                    "float32, the default) to keep them"
                )
        return {k: kept.get(k, 0) + delta.get(k, 0) for k in {*kept, *delta}}  # type: ignore[misc]

    def _resumed_edit(self, name: str, chunk: Sequence[EditCase], index: int, n_chunks: int) -> WeightDelta:
        """The edit of independent chunk `index`: the one an earlier attempt kept in the run (`RunDir.keep_edit`),
        else computed (`_edit`) and kept until the chunk's cases are written."""
        assert self.run is not None  # rank 0's runner
        delta = self.run.kept_edit(name, index)
        if delta is None:
            delta = self._edit(name, chunk, index, n_chunks, {})
            if delta:
                self.run.keep_edit(name, index, delta)
            return delta
        logger.info(f"{name} chunk {index + 1}/{n_chunks}: the edit an earlier attempt computed and kept")
        return {weight: change.to(execution_device(self.adapter.model, weight)) for weight, change in delta.items()}

    def _post_scores(
        self,
        task: PreparedTask,
        cases: Sequence[EditCase],
        index: int,
        n_chunks: int,
        combined: WeightDelta,
        keep: Callable[[list[tuple[EditCase, CaseScores]]], None],
        shared: bool = True,
    ) -> None:
        """The scores (and texts) of `cases` of chunk `index` with `combined` applied, handed to `keep` round by
        round (`_score_cases`); scoring shared out over the worker processes unless not `shared`."""
        name = task.spec.task
        with applied_delta(self.adapter.model, combined):
            desc = f"{name}: post-edit scores, chunk {index + 1}/{n_chunks}"
            for scored in self._score_cases(task, cases, desc, combined, shared):
                if task.generators():
                    batch = [case for case, _ in scored]
                    texts = self._texts(task, batch, f"{name}: post-edit texts, chunk {index + 1}/{n_chunks}")
                    scored = [(case, dataclasses.replace(s, texts=t)) for (case, s), t in zip(scored, texts)]
                keep(scored)

    def edited_scores(
        self, task: PreparedTask, index: int, chunk: Sequence[EditCase], pending: Sequence[EditCase], n_chunks: int
    ) -> list[CaseScores]:
        """Chunk `index` of independent edits edited, and its `pending` cases scored, in this process alone (each
        process of a distributed run takes whole chunks)."""
        delta = self._edit(task.spec.task, chunk, index, n_chunks, {})
        scored: list[tuple[EditCase, CaseScores]] = []
        self._post_scores(task, pending, index, n_chunks, delta, scored.extend, shared=False)
        return [scores for _, scores in scored]

    def _chunks_on_workers(
        self,
        workers: Workers,
        task: PreparedTask,
        assigned: Sequence[tuple[int, Sequence[EditCase], Sequence[EditCase]]],
        n_chunks: int,
    ) -> list[list[CaseScores]]:
        """Each (chunk index, chunk, its pending cases) of `assigned` edited and scored by one process, this one
        taking the first; the post-edit scores of each chunk's pending cases, in order."""
        if len(assigned) == 1:
            return [self.edited_scores(task, *assigned[0], n_chunks)]
        shares = [(assigned[rank] if rank < len(assigned) else None,) for rank in range(workers.size)]
        answers = workers.ask(
            "edit_chunk",
            (dataclasses.replace(task, cases=[]), n_chunks),
            shares,
            lambda item: self.edited_scores(task, item[0], item[1], item[2], n_chunks),
        )
        return answers[: len(assigned)]

    def _write_cases(
        self,
        task: PreparedTask,
        index: int,
        pre: dict[int, CaseScores],
        scored: Sequence[tuple[EditCase, CaseScores]],
    ) -> None:
        """The record of each (case of chunk `index`, its post-edit scores)."""
        assert self.run is not None  # rank 0's runner
        for case, scores in scored:
            self.run.write_case(task.spec.task, _case_record(task, case, pre[case.case_id], scores, index))

    def run_task(self, task: PreparedTask) -> dict[str, Any]:
        """Edit and score every chunk whose case files are missing; an independent chunk's edit is kept in the run
        until its cases are written, so a stop while scoring them does not cost the edit. Sequential runs keep each
        chunk's edit for the next ones (so a resumed sequential run recomputes earlier edits, without rescoring
        them)."""
        assert self.run is not None  # rank 0's runner
        name, cases = task.spec.task, task.cases
        size = self.options.num_edits or max(len(cases), 1)
        chunks = [cases[i : i + size] for i in range(0, len(cases), size)]
        pending = [[c for c in chunk if not self.run.has_case(name, c.case_id)] for chunk in chunks]
        done = [not cases_left for cases_left in pending]
        pre = self.prescores(task) if not all(done) else {}
        if task.generators() and pre:
            texts = self.pregenerations(task)
            pre = {case_id: dataclasses.replace(scores, texts=texts[case_id]) for case_id, scores in pre.items()}
        self.editor.start_sequence()
        if self.workers is not None and not self.options.sequential and len(chunks) > 1:
            todo = [index for index, finished in enumerate(done) if not finished]  # independent chunks: one a process
            for indices in progress_bar(_rounds(self.workers.size, todo), desc=f"{name}: edit chunks", unit="round"):
                assigned = [(i, chunks[i], pending[i]) for i in indices]
                posts = self._chunks_on_workers(self.workers, task, assigned, len(chunks))
                for index, post in zip(indices, posts):
                    self._write_cases(task, index, pre, list(zip(pending[index], post)))
        else:
            kept: WeightDelta = {}  # earlier chunks' edits, in sequential runs
            for index, chunk in progress_bar(list(enumerate(chunks)), desc=f"{name}: edit chunks", unit="chunk"):
                if done[index] and not self.options.sequential:
                    continue
                if self.options.sequential:
                    combined = self._edit(name, chunk, index, len(chunks), kept)
                else:
                    combined = self._resumed_edit(name, chunk, index, len(chunks))
                if not done[index]:  # case files written round by round, so a stop keeps the rounds scored
                    keep = functools.partial(self._write_cases, task, index, pre)
                    if combined:
                        self._post_scores(task, pending[index], index, len(chunks), combined, keep)
                    else:  # no weight changed: the model is in its pre-edit state, whose scores and texts are known
                        keep([(case, pre[case.case_id]) for case in pending[index]])
                    self.run.drop_edits(name)
                if self.options.sequential:
                    kept = combined
                    self.editor.keep_last()
        self.run.drop_edits(name)  # one an attempt stopped after its chunk's last case file left behind
        records = [self.run.read_case(name, c.case_id) for c in cases]
        self.run.write_samples(name, (line for record in records for line in _samples(task, record)))
        summary: dict[str, Any] = {
            m: metric.aggregate([r["metrics"][m] for r in records]) for m, metric in task.metrics
        }
        summary["n_cases"] = len(records)
        for preparation, prepared in task.prepared:
            summary |= preparation.summary(prepared, self.eos_ids)
        warnings = self._edit_warnings(task, summary)
        if warnings:  # only then: a run whose edits all took keeps its summary as before
            summary["warnings"] = warnings
        return summary

    def _edit_warnings(self, task: PreparedTask, summary: Mapping[str, Any]) -> list[str]:
        """What the task's metrics say went wrong with its edits (none for an editor that edits nothing), then where
        the editor's hyperparameters came from: edits that do not take point at them first."""
        if not self.editor.declared_parameters():
            return []
        found = [warning for name, metric in task.metrics for warning in metric.warnings(summary[name])]
        if found and dataclasses.fields(self.editor.hparams):
            name, family = EDITORS.entry(self.options.editor).name, self.adapter.layout.family
            source = hparams_file(name, family).relative_to(Path(flextape_bench.__file__).parents[1])
            overridden = f" with --hparams {' '.join(self.options.hparams)}" if self.options.hparams else ""
            found.append(
                f"{name} ran with the {family} family's hyperparameters from {source.as_posix()}{overridden}; they "
                "may not suit this model: choose them on the tuning split (benchmarks/tune_editor.py) and pass "
                "them with --hparams KEY=VALUE"
            )
        return found


def _rounds(size: int, todo: Sequence[int]) -> list[list[int]]:
    """Chunk indices processed together, one chunk per process: the first alone (so that what an editor computes
    once and caches, like key statistics, is computed by this process only), then `size` at a time."""
    if not todo:
        return []
    return [list(todo[:1])] + [list(todo[i : i + size]) for i in range(1, len(todo), size)]


class WorkerCommands:
    """What a process other than rank 0 of a distributed run does when rank 0 asks (`distributed.serve` calls these
    by name): `setup` (load the model, build the editor and a runner without a run directory), `score` (a share of
    scoring batches with a delta applied) and `edit_chunk` (edit and score one chunk of independent edits)."""

    def __init__(self, options: RunOptions):
        self.options = options
        self.runner: Runner | None = None

    def setup(self, weights: str, batch_tokens: int) -> None:
        adapter = load_adapter(self.options)
        editor = build_editor(self.options, adapter, weights)
        self.runner = Runner(adapter, editor, None, self.options, weights, batch_tokens)

    def score(self, delta: WeightDelta, desc: str, batches: Sequence[Any]) -> list[tuple[tuple[int, int], Score]]:
        return self.runner.score_batches(batches, desc, delta)  # type: ignore[union-attr]

    def edit_chunk(
        self, task: PreparedTask, n_chunks: int, item: tuple[int, Sequence[EditCase], Sequence[EditCase]] | None
    ) -> list[CaseScores] | None:
        return None if item is None else self.runner.edited_scores(task, *item, n_chunks)  # type: ignore[union-attr]


def run_command(options: RunOptions, processes: int | None, lead: Callable[[Workers | None], int]) -> int:
    """The `run` command as this process alone or as one process of a launcher's group: rank 0 calls `lead` with a
    handle on the other ranks (None when alone), and every other rank answers its commands (`WorkerCommands`)."""
    return distributed.run_command(options.device, processes, lead, lambda: WorkerCommands(options))


def _recorded(tasks: Sequence[PreparedTask], kind: str) -> dict[str, dict[str, Any]]:
    """The preparations' entries of the run identity or config.json (`kind`), as {key: {task: value}}."""
    out: dict[str, dict[str, Any]] = {}
    for task in tasks:
        for _, prepared in task.prepared:
            for key, value in getattr(prepared, kind).items():
                out.setdefault(key, {})[task.spec.task] = value
    return out


def check_editor(options: RunOptions, adapter: ModelAdapter | None = None) -> tuple[type[Editor], dict[str, Any]]:
    """The editor class and parsed `--hparams` overrides, every value's type and range checked without loading
    weights. Where the model's config is known (`adapter`'s, or read from disk) the packaged hyperparameters of its
    family are checked too, and every layer index against its layer count; where it is not (a model not yet
    downloaded or converted), `build_editor` checks them once the model is loaded, before anything is written."""
    editor_cls = EDITORS.get(options.editor)
    overrides = parse_overrides(options.hparams)
    config = adapter.model.config if adapter is not None else models.local_config(options.model, options.model_args)
    if config is None:
        check_overrides(options.editor, editor_cls.hparams_class, overrides)
    else:
        load_hparams(
            EDITORS.entry(options.editor).name,
            editor_cls.hparams_class,
            models.hparams_family(options.model, config.model_type),
            overrides,
            config.num_hidden_layers,
        )
    return editor_cls, overrides


def load_adapter(options: RunOptions) -> ModelAdapter:
    """The model of `options`, loaded as its model flags say (device, dtype, placement, --model-args, chat
    template)."""
    return models.load(
        options.model,
        options.device,
        options.dtype,
        options.max_memory,
        options.offload_folder,
        options.model_args,
        options.apply_chat_template,
    )


def build_editor(options: RunOptions, adapter: ModelAdapter, weights: str) -> Editor:
    """The editor with its hyperparameters for the model's family and `--hparams` overrides."""
    editor_cls, overrides = check_editor(options, adapter)
    name = EDITORS.entry(options.editor).name
    hparams = load_hparams(name, editor_cls.hparams_class, adapter.layout.family, overrides)
    return editor_cls(adapter, hparams, EditorContext(options.seed, options.cache, weights))


def run(
    options: RunOptions, adapter: ModelAdapter | None = None, workers: Workers | None = None
) -> tuple[RunDir, dict[str, Any]]:
    """Run every task of `options` and write the results tree; returns the run directory and the summary.

    `adapter` is a model already loaded for `options.model` (the library use); by default it is loaded here.
    `workers`: the other processes of a distributed run (`flextape_bench.distributed`), set up once this one has
    checked everything and loaded the model.
    """
    _check_flags(options)
    if adapter is None:
        models.check_model(options.model, options.model_args)
        check_device(options.device, options.max_memory, options.offload_folder)
    check_editor(options, adapter)
    check_output(options.output)
    tasks = prepare_tasks(options)
    if missing := checklist(tasks):
        logger.warning(missing)
    started = time.time()
    adapter = adapter or load_adapter(options)
    weights = adapter.weights_fingerprint()
    editor = build_editor(options, adapter, weights)
    _check_targets(tasks, adapter)
    batch_tokens = _batch_tokens(options, adapter, tasks)  # not in the identity or config.json: depends on free memory
    if workers is not None:  # after this process has loaded the model: what loading writes once (the embedded
        # model's conversion) is there for the others
        workers.ask("setup", (weights, batch_tokens["used"]), [()] * workers.size, lambda: None)
    state = model_state(adapter, weights)
    identity: dict[str, Any] = {
        "model": options.model,
        "model_location": adapter.location,
        "model_revision": adapter.revision,
        "weights_blake2b": weights,
        "editor": EDITORS.entry(options.editor).name,
        "hparams": dataclasses.asdict(editor.hparams),
        "model_config": state["config"],
        "tasks": {t.spec.task: t.spec.spec_hash for t in tasks},
        "data_sha256": {t.spec.task: t.data_sha256 for t in tasks},
        "limit": options.limit,
        "num_edits": options.num_edits,
        "sequential": options.sequential,
        "seed": options.seed,
        "device": adapter.device,
        "dtype": str(adapter.dtype),
        "scorer_version": SCORER_VERSION,
        "versions": {k: state[k] for k in ("torch", "transformers")},
    }
    if options.samples is not None:  # only then, as for the preparations' entries below
        identity["samples"] = {
            t.spec.task: [c.case_id for c in t.cases] for t in tasks if t.spec.task in options.samples
        }
    identity |= _recorded(tasks, "identity")  # only where a task has some: other runs keep their identity (and resume)
    if adapter.model_args:  # likewise only where given
        identity["model_args"] = adapter.model_args
    identity |= _chat_template(adapter)
    options_by_task = {t.spec.task: metric_options(t.spec) for t in tasks if metric_options(t.spec)}
    if options_by_task:  # metric options change metric values but not the spec hash (nor the cached scores)
        identity["metric_options"] = options_by_task
    config = {
        "versions": {**_versions(), "flextape_bench_commit": _source_commit()},
        "model_parameters": sum(p.numel() for p in adapter.model.parameters()),  # tied weights once
        # CPU sums depend on the thread count, and FT-L's Adam steps amplify such differences (docs/faithfulness.md)
        "torch_threads": torch.get_num_threads(),
        "editor_record": editor.run_record(),
    } | _recorded(tasks, "config")
    run_dir, resumed = open_run(options.output, options.model, identity["editor"], identity, config, options.resume)
    with run_dir:  # locked for this process until the run is finished (or failed)
        logger.info(f"{'resuming' if resumed else 'writing'} {run_dir.path}")
        run_dir.log_start(sys.argv, started, batch_tokens)  # times, command line and batch size: timing.json only
        runner = Runner(adapter, editor, run_dir, options, weights, batch_tokens["used"], workers)
        tasks_summary = {t.spec.task: runner.run_task(t) for t in tasks}
        summary = {
            "model": options.model,
            "editor": identity["editor"],
            "run": run_dir.path.name,
            "tasks": tasks_summary,
        }
        run_dir.remove_temporaries()
        run_dir.log_finish()
        write_summary(run_dir.path, summary, run_dir.digests)
    return run_dir, summary
