"""The long_form metric's preparation, from the task's `long_form` section: the prompts each case generates from
(its distinct generation prompts, or subject templates rendered through the task's prompt template), the decoding
settings, and the flaw lexicon (the packaged one, then the task's files, then the command line's)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flextape_bench.cases import EditCase, distinct_prompts
from flextape_bench.errors import UserError
from flextape_bench.generation import GENERATION_VERSION, Decoding
from flextape_bench.lexicon import Lexicon, load_lexicon
from flextape_bench.tasks.loader import include_roots, locate
from flextape_bench.tasks.spec import LongForm, TaskSpec
from flextape_bench.tasks.templating import compile_template, render

NAME = "long_form"


@dataclass(frozen=True)
class LongFormQuery:
    """What the metric generates about the edited subject: `samples` texts after each prompt, before and after the
    edit; `lexicon` (a `flextape_bench.lexicon.Lexicon`) flags the texts' flaw categories."""

    prompts: tuple[str, ...]
    samples: int = 1
    lexicon: Any = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"prompts": list(self.prompts), "samples": self.samples}


def query_of(case: EditCase) -> LongFormQuery | None:
    """The case's long-form query, if its task has the metric."""
    return case.queries.get(NAME)


def decoding_of(section: LongForm) -> Decoding:
    return Decoding(
        max_new_tokens=section.max_new_tokens,
        do_sample=section.do_sample,
        temperature=section.temperature,
        top_k=section.top_k,
        top_p=section.top_p,
    )


def lexicon_files(spec: TaskSpec) -> list[Path]:
    """The task's lexicon files, each relative path resolved against the YAML file that names it."""
    section = spec.long_form
    files = []
    for i, name in enumerate(section.lexicon if section else ()):
        path = Path(name).expanduser()
        written, line = locate(spec.source, ["long_form", "lexicon", i], spec.include_path)
        path = (path if path.is_absolute() else written.parent / path).resolve()
        roots = include_roots(spec.source, spec.include_path)
        if not any(path.is_relative_to(root) for root in roots):  # as includes: no file from elsewhere is read
            raise UserError(
                f"{written}:{line}: long_form.lexicon[{i}]: {path} is outside the folders a task file may "
                f"read from ({', '.join(map(str, roots))}); move it into one of them or add its folder "
                "with --include-path"
            )
        if not path.is_file():
            raise UserError(
                f"{written}:{line}: long_form.lexicon[{i}]: lexicon file {path} does not exist; fix the "
                "path (relative to this file)"
            )
        files.append(path)
    return files


def task_lexicon(spec: TaskSpec, extra: Sequence[Path] = ()) -> Lexicon:
    """The packaged lexicon with the task's files, then `extra` (the command line's --lexicon), applied in order."""
    return load_lexicon([*lexicon_files(spec), *map(Path, extra)])


def prepare_long_form(
    spec: TaskSpec, cases: Sequence[EditCase], extra_lexicons: Sequence[Path] = ()
) -> tuple[list[EditCase], dict[str, Any]]:
    """The cases with their long-form query, and the settings to record (prompts, samples, decoding, lexicon)."""
    section = spec.long_form
    if section is None:
        raise UserError(f"{spec.source}: the long_form metric needs a `long_form:` section")
    lexicon = task_lexicon(spec, extra_lexicons)
    template = compile_template(spec.templates.prompt)
    out = []
    for case in cases:
        if section.prompts == "generation_prompts":
            prompts = distinct_prompts(case.generation_prompts)
        else:
            where = f"{spec.source}: templates.prompt: rendering failed for task {spec.task}, case_id {case.case_id}"
            prompts = distinct_prompts(
                [render(template, where, prompt=t.replace("{}", case.rewrite.subject)) for t in section.templates or ()]
            )
        query = LongFormQuery(prompts, section.samples, lexicon)
        out.append(dataclasses.replace(case, queries={**case.queries, NAME: query}))
    settings = {
        "prompts": section.prompts,
        "templates": list(section.templates) if section.templates is not None else None,
        "samples": section.samples,
        "decoding": decoding_of(section).to_json(),
        "generation_version": GENERATION_VERSION,
        "lexicon": lexicon.describe(),
    }
    return out, settings
