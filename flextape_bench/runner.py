"""One run: task specs -> cases -> pre-edit scores (cached) -> edits in chunks -> post-edit scores -> restore ->
metrics -> results tree and summary tables. Everything the user gave is validated before the model loads."""
from __future__ import annotations

import contextlib
import dataclasses
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch

import flextape_bench
from flextape_bench import models
from flextape_bench.cases import CaseScores, EditCase, EditRequest, Score, case_scores, score_requests
from flextape_bench.demographics import label_task_cases
from flextape_bench.editors import EDITORS, Editor, EditorContext, WeightDelta, check_overrides, load_hparams, parse_overrides
from flextape_bench.errors import UserError
from flextape_bench.generation import GenerationRequest, TextGenerator, derive_seed, eos_token_ids
from flextape_bench.memory import (AUTO, MAX_BATCH_TOKENS, MAX_HALVINGS, Shape, fitting_tokens, is_out_of_memory,
                                   model_free_bytes)
from flextape_bench.metrics import METRICS
from flextape_bench.models.adapter import ModelAdapter
from flextape_bench.models.loading import check_device
from flextape_bench.paths import cache_dir
from flextape_bench.prescores import PreGenerationCache, PreScoreCache, cache_key, generation_key
from flextape_bench.progress import progress_bar
from flextape_bench.results import RunDir, check_output, open_run
from flextape_bench.scoring import SCORER_VERSION, Scorer
from flextape_bench.tables import write_summary
from flextape_bench.tasks import TaskIndex, TaskSpec, load_cases, resolve_data_file
from flextape_bench.tasks.data import sha256_of
from flextape_bench.tasks.cross import prepare_cross
from flextape_bench.tasks.long_form import decoding_of, prepare_long_form
from flextape_bench.tasks.spec import metric_options
from flextape_bench.tokenization import EmptyTargetError, encode_continuation
from flextape_bench.weights import applied_delta, unrepresented_share

if TYPE_CHECKING:
    from flextape_bench.distributed import Workers


@dataclass
class RunOptions:
    """Everything a run takes from the command line."""

    model: str = models.DEFAULT_MODEL
    editor: str = "none"
    tasks: Sequence[str] = ("all",)
    limit: int | None = None
    samples: Mapping[str, Sequence[int]] | None = None  # --samples: case positions in the data file, per task
    num_edits: int | None = None  # edits per chunk; None = the whole task in one batch
    hparams: Sequence[str] = ()
    seed: int = 0
    device: str = "cpu"
    dtype: str = "auto"
    max_memory: str | None = None  # --max-memory with --device auto, e.g. "0=20GiB,cpu=60GiB"
    offload_folder: Path | None = None  # where --device auto offloads weights to disk
    data_dir: Path | None = None
    output: Path = Path("results")
    include_paths: Sequence[Path] = ()
    batch_tokens: int | str = AUTO  # padded tokens per scoring and generation batch, or "auto" (fit free memory)
    max_batch_tokens: int = MAX_BATCH_TOKENS  # the most "auto" picks
    resume: bool = True
    sequential: bool = False  # keep each chunk's edit while editing the next chunks
    lexicons: Sequence[Path] = ()  # flaw lexicon files applied over each long_form task's lexicon
    cache: Path = field(default_factory=cache_dir)


@dataclass
class PreparedTask:
    spec: TaskSpec
    cases: list[EditCase]
    data_sha256: str  # of the data file the cases were read from (stand-ins and files without a declared sha256 too)
    labels: dict[str, Any] | None = None  # demographic label coverage, for tasks with demographic group metrics
    cross: dict[str, Any] | None = None  # true-value coverage of the cross_property metric
    long_form: dict[str, Any] | None = None  # settings of the long_form metric (prompts, decoding, lexicon)


DEMOGRAPHIC_METRICS = {"gender_shift": "gender", "race_shift": "race", "geography_shift": "geography",
                       "continent_shift": "continent"}


def _check_flags(options: RunOptions) -> None:
    """Counts out of range and flags that contradict each other (nothing needs a model or a file here)."""
    if isinstance(options.batch_tokens, str) and options.batch_tokens != AUTO:
        raise UserError(f"--batch-tokens must be {AUTO} or a positive integer, got {options.batch_tokens!r}")
    batch_tokens = None if options.batch_tokens == AUTO else options.batch_tokens
    for flag, value in (("--limit", options.limit), ("--num-edits", options.num_edits),
                        ("--batch-tokens", batch_tokens), ("--max-batch-tokens", options.max_batch_tokens)):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be a positive integer, got {value}")
    if options.samples is not None:
        if options.limit is not None:
            raise UserError("--samples and --limit both choose cases; give one of them")
        for task, positions in options.samples.items():
            if not positions or len(set(positions)) != len(positions) or min(positions) < 0:
                raise UserError(f"--samples: {task}: the case positions must be a non-empty list of distinct "
                                f"integers of 0 or more, got {list(positions)[:10]}")
    if options.sequential and options.num_edits is None:
        raise UserError("--sequential needs --num-edits K: without it each task is edited in one chunk, so there is "
                        "no earlier chunk to keep; add --num-edits (1 = one edit at a time) or drop --sequential")


def prepare_tasks(options: RunOptions) -> list[PreparedTask]:
    """Expand task names and groups, resolve each task's data file and build its cases (no model needed)."""
    index = TaskIndex(list(options.include_paths))
    names = index.expand(list(options.tasks))
    samples = options.samples or {}
    unknown = sorted(set(samples) - set(names))
    if unknown:
        raise UserError(f"--samples names {', '.join(unknown)}, which --tasks does not run; the tasks are "
                        f"{', '.join(names)}")
    prepared = []
    for name in names:
        spec = index.spec(name)
        path = resolve_data_file(spec, options.data_dir, options.cache)
        cases = _chosen(load_cases(spec, path, options.limit), samples.get(name), path)
        task = _labelled(PreparedTask(spec, cases, sha256_of(path)), options)
        prepared.append(_with_long_form(_with_cross(task, options), options))
    if options.lexicons and not any(task.long_form is not None for task in prepared):
        raise UserError(f"--lexicon applies to long_form tasks only, and none of {', '.join(options.tasks)} has one; "
                        "add a *_longform task to --tasks or drop --lexicon")
    return prepared


def _chosen(cases: list[EditCase], positions: Sequence[int] | None, path: Path) -> list[EditCase]:
    """The cases at `positions` (file order, as given), or all of them. Cases are read from the whole file first,
    so that what depends on other cases (probe genders) is the same as in a full run."""
    if positions is None:
        return cases
    if max(positions) >= len(cases):
        raise UserError(f"--samples: case position {max(positions)} is past the end of {path} ({len(cases)} cases, "
                        f"positions 0-{len(cases) - 1})")
    return [cases[i] for i in positions]


def _with_long_form(task: PreparedTask, options: RunOptions) -> PreparedTask:
    """The task's cases with their long-form query (prompts, samples, lexicon), where its metrics include
    long_form; the lexicon is read and checked here, before any model loads."""
    if "long_form" not in task.spec.metrics:
        return task
    cases, settings = prepare_long_form(task.spec, task.cases, options.lexicons)
    return dataclasses.replace(task, cases=cases, long_form=settings)


def _with_cross(task: PreparedTask, options: RunOptions) -> PreparedTask:
    """The task's cases with their cross-property query (candidates, distinct generation prompts, true values),
    where its metrics include cross_property."""
    if "cross_property" not in task.spec.metrics:
        return task
    cases, coverage = prepare_cross(task.spec, task.cases, options.data_dir, options.cache)
    return dataclasses.replace(task, cases=cases, cross=coverage)


def _labelled(task: PreparedTask, options: RunOptions) -> PreparedTask:
    """The task with its probes' demographic labels, from the local Wikidata cache, where its metrics need them;
    gender combines the construction order with Wikidata P21 as the spec's probes.gender_wikidata says."""
    gender_wikidata = task.spec.probes.gender_wikidata if task.spec.probes else "off"
    attributes = [a for metric, a in DEMOGRAPHIC_METRICS.items()
                  if metric in task.spec.metrics and (a != "gender" or gender_wikidata != "off")]
    if not attributes:
        return task
    cases, summary = label_task_cases(task.cases, data_dir=options.data_dir, cache_root=options.cache,
                                      attributes=attributes, gender_wikidata=gender_wikidata)
    for line in summary.lines():
        print(f"{task.spec.task}: {line}", file=sys.stderr)
    if summary.probes and not summary.cached:
        print(f"{task.spec.task}: no probe is in the demographics cache, so no {'/'.join(attributes)} label comes "
              f"from Wikidata; fetch them once with `flextape-bench demographics --tasks {task.spec.task}`",
              file=sys.stderr)
    return dataclasses.replace(task, cases=cases, labels=summary.to_json())


def _check_targets(tasks: Sequence[PreparedTask], adapter: ModelAdapter) -> None:
    """Every target, and every cross-property candidate, gives at least one token with the model's tokenizer:
    checked as soon as the tokenizer is there, before the run directory is created."""
    for task in tasks:
        targets = [(f"case_id {case.case_id}: fields.{field}", case.rewrite.edit_prompt, getattr(case.rewrite, field))
                   for case in task.cases for field in ("target_new", "target_true")]
        cross = task.cases[0].cross if task.cases else None
        if cross is not None and cross.prompts:
            targets += [("cross_property.candidates", cross.prompts[0], candidate) for candidate in cross.candidates]
        for where, prompt, target in targets:
            try:
                encode_continuation(adapter.tokenizer, prompt, target)
            except EmptyTargetError as exc:
                raise UserError(f"task {task.spec.task}: {where}: {exc}") from exc


def _batch_tokens(options: RunOptions, adapter: ModelAdapter, tasks: Sequence[PreparedTask]) -> dict[str, Any]:
    """The padded tokens per batch (`used`) and how they were chosen, for timing.json. `auto`: what fits the free
    memory of the model's devices for the run's longest scoring row and, with long-form tasks, its longest
    generation row (memory.fitting_tokens), at most --max-batch-tokens; printed once."""
    if options.batch_tokens != AUTO:
        return {"option": options.batch_tokens, "used": options.batch_tokens}
    shape, dtype_bytes, cap = Shape.of(adapter.model.config), adapter.dtype.itemsize, options.max_batch_tokens
    free = model_free_bytes(adapter)
    scorer = Scorer(adapter)
    longest = scorer.longest_row([r for task in tasks for case in task.cases for r in score_requests(case)])
    budgets = [fitting_tokens(free, shape, max(longest, 1), dtype_bytes, scorer.head_chunk, cap)]
    for task in tasks:
        if task.long_form is not None and task.cases:
            generator = TextGenerator(adapter, decoding_of(task.spec.long_form))
            length = generator.longest_row([prompt for case in task.cases for prompt in case.long_form.prompts])
            budgets.append(fitting_tokens(free, shape, length, dtype_bytes, generator.max_batch, cap, kv_cache=True))
    used = min(budgets)
    print(f"batch tokens: {AUTO} -> {used} ({free / 2**30:.1f} GiB free)", file=sys.stderr)
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
    device type and the versions of the code that computes the forward pass."""
    versions = _versions()
    return {"weights": weights, "tokenizer": adapter.tokenizer_fingerprint, "config": adapter.config_fingerprint,
            "device": adapter.input_device.type, "torch": versions["torch"], "transformers": versions["transformers"]}


def _case_record(case: EditCase, pre: CaseScores, post: CaseScores, metrics: Sequence[str], chunk: int) -> dict[str, Any]:
    return {
        "case_id": case.case_id,
        "chunk": chunk,
        "rewrite": dataclasses.asdict(case.rewrite),
        "probes": [dataclasses.asdict(p) for p in case.probes],
        **({"cross": dataclasses.asdict(case.cross)} if case.cross else {}),  # prompts x candidates of "generation"
        **({"long_form": case.long_form.to_json()} if case.long_form else {}),  # prompts x samples of "texts"
        "metrics": {name: METRICS.get(name).case(case, pre, post) for name in metrics},
        "pre": pre.to_json(),
        "post": post.to_json(),
    }


def _samples(record: dict[str, Any]):
    """samples.jsonl lines of one case: the edit prompt, then each probe, with pre- and post-edit scores; then each
    distinct generation prompt with its top-1 candidate and that candidate's p, pre and post."""
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
    cross = record.get("cross") or {"prompts": []}
    for prompt, value in zip(cross["prompts"], record["metrics"].get("cross_property", {}).get("prompts", [])):
        yield {
            "case_id": record["case_id"],
            "kind": "generation",
            "prompt": prompt,
            "property": cross["property"],
            "truth": cross["truth"],
            "pre": {"top1": value["pre"], "p": value["p_pre"]},
            "post": {"top1": value["post"], "p": value["p_post"]},
        }
    long_form = record.get("long_form")
    if long_form:
        values = iter(record["metrics"].get("long_form", {}).get("texts", []))
        for j, prompt in enumerate(long_form["prompts"]):
            for s in range(long_form["samples"]):
                value = next(values, {"pre": {}, "post": {}})
                yield {
                    "case_id": record["case_id"],
                    "kind": "long_form",
                    "prompt": prompt,
                    "sample": s,
                    "target_new": rewrite["target_new"],
                    "target_true": rewrite["target_true"],
                    "pre": {"text": record["pre"]["texts"][j][s], **value["pre"]},
                    "post": {"text": record["post"]["texts"][j][s], **value["post"]},
                }


class Runner:
    """Edits and scores one run's tasks. `workers`: rank 0's handle on the other processes of a distributed run
    (None: this process alone); the other ranks' runners have no `run` directory."""

    def __init__(self, adapter: ModelAdapter, editor: Editor, run: RunDir | None, options: RunOptions, weights: str,
                 batch_tokens: int, workers: Workers | None = None):
        self.adapter, self.editor, self.run, self.options, self.workers = adapter, editor, run, options, workers
        self.scorer = Scorer(adapter, batch_tokens=batch_tokens,
                             halvings=MAX_HALVINGS if options.batch_tokens == AUTO else 0)
        self.weights = weights
        self.model_state = model_state(adapter, weights)
        self.eos_ids = eos_token_ids(adapter)

    def _batch_advice(self, doing: str):
        """Out of memory in a scoring or generation batch: `--batch-tokens` bounds it (not part of the run's
        identity, so the same command with a smaller value resumes the run). `auto` tells the value it came to."""
        tokens = self.scorer.batch_tokens
        now = f"{AUTO} -> {tokens}" if self.options.batch_tokens == AUTO else tokens
        return _memory_advice(doing, f"lower --batch-tokens (now {now}), e.g. --batch-tokens {max(tokens // 2, 1)}; "
                                     "the run resumes where it stopped")

    def _score_cases(self, cases: Sequence[EditCase], desc: str, delta: WeightDelta | None = None,
                     shared: bool = True) -> list[CaseScores]:
        """Each case's scores. With worker processes and `shared`, the scoring is shared out over them, and they add
        `delta` (the edit applied to this process's model) to their weights."""
        requests = [score_requests(case) for case in cases]
        flat_requests = [r for rs in requests for r in rs]
        with self._batch_advice(f"scoring ({desc})"):
            if self.workers is None or not shared:
                flat = self.scorer.score(flat_requests, desc=desc)
            else:
                flat = self.workers.score(self.scorer, flat_requests, delta or {}, desc)
        out, at = [], 0
        for case, rs in zip(cases, requests):
            out.append(case_scores(case, flat[at : at + len(rs)]))
            at += len(rs)
        return out

    def score_batches(self, batches: Sequence[Any], desc: str, delta: WeightDelta
                      ) -> list[tuple[tuple[int, int], Score]]:
        """A worker process's share of a distributed run's scoring: `Scorer.scored(batches)` with `delta` applied."""
        with applied_delta(self.adapter.model, delta), self._batch_advice(f"scoring ({desc})"):
            return list(self.scorer.scored(batches))

    def prescores(self, task: PreparedTask) -> dict[int, CaseScores]:
        """Pre-edit scores of every case, from the cache where present; the rest computed and cached."""
        key = cache_key(self.model_state, task.spec.spec_hash, task.data_sha256, SCORER_VERSION)
        cache = PreScoreCache(self.options.cache, key)
        found = {case.case_id: cache.get(case.case_id, score_requests(case)) for case in task.cases}
        missing = [case for case in task.cases if found[case.case_id] is None]
        if missing:
            for case, scores in zip(missing, self._score_cases(missing, f"{task.spec.task}: pre-edit scores")):
                cache.put(case.case_id, score_requests(case), scores)
                found[case.case_id] = scores
        print(f"{task.spec.task}: pre-edit scores for {len(task.cases) - len(missing)} of {len(task.cases)} cases "
              f"from the cache {cache.path}", file=sys.stderr)
        return found  # type: ignore[return-value]

    def generation_settings(self, task: PreparedTask) -> dict[str, Any]:
        """What determines a long-form text besides its prompt and seed: decoding, EOS ids, generation code."""
        return {"decoding": task.long_form["decoding"], "eos_token_ids": list(self.eos_ids),
                "generation_version": task.long_form["generation_version"]}

    def _generate_cases(self, task: PreparedTask, cases: Sequence[EditCase], desc: str
                        ) -> list[tuple[tuple[str, ...], ...]]:
        """Each case's texts, per long-form prompt one per sample. The seed of a text depends on the run seed,
        the case id, the prompt and the sample index only, so pre- and post-edit texts share their draws."""
        generator = TextGenerator(self.adapter, decoding_of(task.spec.long_form), self.scorer.batch_tokens,
                                  eos_ids=self.eos_ids)
        requests = [GenerationRequest(prompt, derive_seed(self.options.seed, case.case_id, prompt, s))
                    for case in cases for prompt in case.long_form.prompts for s in range(case.long_form.samples)]
        with self._batch_advice(f"generating ({desc})"):
            texts = iter(g.text for g in generator.generate(requests, desc=desc))
        return [tuple(tuple(next(texts) for _ in range(case.long_form.samples)) for _ in case.long_form.prompts)
                for case in cases]

    def pregenerations(self, task: PreparedTask) -> dict[int, tuple[tuple[str, ...], ...]]:
        """Pre-edit texts of every case, from the cache where present; the rest generated and cached."""
        key = generation_key(self.model_state, self.generation_settings(task), self.options.seed)
        cache = PreGenerationCache(self.options.cache, key)
        found = {c.case_id: cache.get(c.case_id, c.long_form.prompts, c.long_form.samples) for c in task.cases}
        missing = [case for case in task.cases if found[case.case_id] is None]
        if missing:
            for case, texts in zip(missing, self._generate_cases(task, missing, f"{task.spec.task}: pre-edit texts")):
                cache.put(case.case_id, case.long_form.prompts, case.long_form.samples, texts)
                found[case.case_id] = texts
        print(f"{task.spec.task}: pre-edit texts for {len(task.cases) - len(missing)} of {len(task.cases)} cases "
              f"from the cache {cache.path}", file=sys.stderr)
        return found  # type: ignore[return-value]

    def _edit(self, name: str, chunk: Sequence[EditCase], index: int, n_chunks: int, kept: WeightDelta
              ) -> WeightDelta:
        """The edit of chunk `index` (seeded with seed + index, computed on the model carrying `kept`) plus `kept`."""
        torch.manual_seed(self.options.seed + index)
        fewer = (f"edit fewer at once, e.g. --num-edits {len(chunk) // 2}" if len(chunk) > 1 else
                 "a single edit does not fit: use --dtype bfloat16, or --device auto to spread the model")
        with (applied_delta(self.adapter.model, kept),
              _memory_advice(f"editing ({self.options.editor}, {name} chunk {index + 1}/{n_chunks}: "
                             f"{len(chunk)} edit{'s' if len(chunk) > 1 else ''} at once)", fewer)):
            delta = self.editor.compute_delta([EditRequest.from_rewrite(c.rewrite, c.case_id) for c in chunk])
        undeclared = sorted(set(delta) - set(self.editor.declared_parameters()))
        if undeclared:
            raise RuntimeError(f"editor {self.options.editor} changed undeclared parameters {undeclared}")
        if self.adapter.dtype != torch.float32:
            lost = unrepresented_share(self.adapter.model, delta)
            if lost:
                print(f"warning: {name} chunk {index + 1}/{n_chunks}: {lost:.1%} of the weight changes the edit "
                      f"asked for round away in {self.adapter.dtype}; edit in float32 (--dtype float32, the "
                      "default) to keep them", file=sys.stderr)
        return {k: kept.get(k, 0) + delta.get(k, 0) for k in {*kept, *delta}}

    def _post_scores(self, task: PreparedTask, chunk: Sequence[EditCase], index: int, n_chunks: int,
                     combined: WeightDelta, shared: bool = True) -> list[CaseScores]:
        """The chunk's scores (and long-form texts) with `combined` applied; scoring shared out over the worker
        processes unless not `shared`."""
        name = task.spec.task
        with applied_delta(self.adapter.model, combined):
            post = self._score_cases(chunk, f"{name}: post-edit scores, chunk {index + 1}/{n_chunks}", combined,
                                     shared)
            if task.long_form is not None:
                texts = self._generate_cases(task, chunk, f"{name}: post-edit texts, chunk {index + 1}/{n_chunks}")
                post = [dataclasses.replace(scores, texts=t) for scores, t in zip(post, texts)]
        return post

    def edited_scores(self, task: PreparedTask, index: int, chunk: Sequence[EditCase], n_chunks: int
                      ) -> list[CaseScores]:
        """Chunk `index` of independent edits edited and scored in this process alone (each process of a
        distributed run takes whole chunks)."""
        return self._post_scores(task, chunk, index, n_chunks, self._edit(task.spec.task, chunk, index, n_chunks, {}),
                                 shared=False)

    def _write_cases(self, task: PreparedTask, chunk: Sequence[EditCase], index: int, pre: dict[int, CaseScores],
                     post: Sequence[CaseScores]) -> None:
        for case, scores in zip(chunk, post):
            self.run.write_case(task.spec.task, _case_record(case, pre[case.case_id], scores, task.spec.metrics, index))

    def run_task(self, task: PreparedTask) -> dict[str, Any]:
        """Edit and score every chunk whose case files are missing. Sequential runs keep each chunk's edit for the
        next ones (so a resumed sequential run recomputes earlier edits, without rescoring them)."""
        name, cases = task.spec.task, task.cases
        size = self.options.num_edits or max(len(cases), 1)
        chunks = [cases[i : i + size] for i in range(0, len(cases), size)]
        done = [all(self.run.has_case(name, c.case_id) for c in chunk) for chunk in chunks]
        pre = self.prescores(task) if not all(done) else {}
        if task.long_form is not None and pre:
            texts = self.pregenerations(task)
            pre = {case_id: dataclasses.replace(scores, texts=texts[case_id]) for case_id, scores in pre.items()}
        self.editor.start_sequence()
        if self.workers is not None and not self.options.sequential and len(chunks) > 1:
            todo = [index for index, finished in enumerate(done) if not finished]  # independent chunks: one a process
            for indices in progress_bar(self.workers.rounds(todo), desc=f"{name}: edit chunks", unit="round"):
                posts = self.workers.edit_chunks(self, task, [(i, chunks[i]) for i in indices], len(chunks))
                for index, post in zip(indices, posts):
                    self._write_cases(task, chunks[index], index, pre, post)
        else:
            kept: WeightDelta = {}  # earlier chunks' edits, in sequential runs
            for index, chunk in progress_bar(list(enumerate(chunks)), desc=f"{name}: edit chunks", unit="chunk"):
                if done[index] and not self.options.sequential:
                    continue
                combined = self._edit(name, chunk, index, len(chunks), kept)
                if not done[index]:
                    self._write_cases(task, chunk, index, pre, self._post_scores(task, chunk, index, len(chunks),
                                                                                 combined))
                if self.options.sequential:
                    kept = combined
                    self.editor.keep_last()
        records = [self.run.read_case(name, c.case_id) for c in cases]
        self.run.write_samples(name, (line for record in records for line in _samples(record)))
        values = {m: METRICS.get(m).aggregate([r["metrics"][m] for r in records]) for m in task.spec.metrics}
        return (values | {"n_cases": len(records)} | ({"labels": task.labels} if task.labels else {})
                | ({"cross_property_truth": task.cross} if task.cross else {})
                | ({"long_form_settings": task.long_form | {"eos_token_ids": list(self.eos_ids),
                                                            "seed": self.options.seed}}
                   if task.long_form else {}))


def _long_form_identity(settings: dict[str, Any]) -> dict[str, Any]:
    """What changes a long-form task's results beyond its spec hash: the lexicon's content (its files are not
    part of the spec hash) and the generation code's version."""
    return {"lexicon_sha256": settings["lexicon"]["sha256"], "generation_version": settings["generation_version"]}


def check_editor(options: RunOptions, adapter: ModelAdapter | None = None) -> tuple[type[Editor], dict[str, Any]]:
    """The editor class and parsed `--hparams` overrides, every value's type and range checked without loading
    weights. Where the model's config is known (`adapter`'s, or read from disk) the packaged hyperparameters of its
    family are checked too, and every layer index against its layer count; where it is not (a model not yet
    downloaded or converted), `build_editor` checks them once the model is loaded, before anything is written."""
    editor_cls = EDITORS.get(options.editor)
    overrides = parse_overrides(options.hparams)
    config = adapter.model.config if adapter is not None else models.local_config(options.model)
    if config is None:
        check_overrides(options.editor, editor_cls.hparams_class, overrides)
    else:
        load_hparams(EDITORS.entry(options.editor).name, editor_cls.hparams_class,
                     models.layout_for(config.model_type).family, overrides, config.num_hidden_layers)
    return editor_cls, overrides


def build_editor(options: RunOptions, adapter: ModelAdapter, weights: str) -> Editor:
    """The editor with its hyperparameters for the model's family and `--hparams` overrides."""
    editor_cls, overrides = check_editor(options, adapter)
    name = EDITORS.entry(options.editor).name
    hparams = load_hparams(name, editor_cls.hparams_class, adapter.layout.family, overrides)
    return editor_cls(adapter, hparams, EditorContext(options.seed, options.cache, weights))


def run(options: RunOptions, adapter: ModelAdapter | None = None, workers: Workers | None = None
        ) -> tuple[RunDir, dict[str, Any]]:
    """Run every task of `options` and write the results tree; returns the run directory and the summary.

    `adapter` is a model already loaded for `options.model` (the library use); by default it is loaded here.
    `workers`: the other processes of a distributed run (`flextape_bench.distributed`), set up once this one has
    checked everything and loaded the model.
    """
    _check_flags(options)
    check_editor(options, adapter)
    if adapter is None:
        models.check_model(options.model)
        check_device(options.device, options.max_memory, options.offload_folder)
    check_output(options.output)
    tasks = prepare_tasks(options)
    started = time.time()
    adapter = adapter or models.load(options.model, options.device, options.dtype, options.max_memory,
                                     options.offload_folder)
    weights = adapter.weights_fingerprint()
    editor = build_editor(options, adapter, weights)
    _check_targets(tasks, adapter)
    batch_tokens = _batch_tokens(options, adapter, tasks)  # not in the identity or config.json: it depends on free memory
    if workers is not None:
        workers.setup(weights, batch_tokens["used"])
    state = model_state(adapter, weights)
    identity = {
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
        "device": options.device,
        "dtype": str(adapter.dtype),
        "scorer_version": SCORER_VERSION,
        "versions": {k: state[k] for k in ("torch", "transformers")},
    }
    if options.samples is not None:  # only then, as for long_form below
        identity["samples"] = {t.spec.task: [c.case_id for c in t.cases] for t in tasks if t.spec.task in options.samples}
    long_form = {t.spec.task: _long_form_identity(t.long_form) for t in tasks if t.long_form}
    if long_form:  # only then: runs without long-form tasks keep their identity (and resume)
        identity["long_form"] = long_form
    options_by_task = {t.spec.task: metric_options(t.spec) for t in tasks if metric_options(t.spec)}
    if options_by_task:  # metric options change metric values but not the spec hash (nor the cached scores)
        identity["metric_options"] = options_by_task
    config = {"versions": _versions(), "editor_record": editor.run_record()}
    lexicons = {t.spec.task: t.cases[0].long_form.lexicon.to_json() | {"sources": t.long_form["lexicon"]["sources"]}
                for t in tasks if t.long_form and t.cases}
    if lexicons:  # the full lexicon of each long-form task (terms and patterns), to rerun the flags later
        config["long_form_lexicons"] = lexicons
    run_dir, resumed = open_run(options.output, options.model, identity["editor"], identity, config, options.resume)
    with run_dir:  # locked for this process until the run is finished (or failed)
        print(f"{'resuming' if resumed else 'writing'} {run_dir.path}", file=sys.stderr)
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
