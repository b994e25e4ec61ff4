"""A task's long_form section at run time: the prompts each case generates from, the lexicon files (relative to the
YAML file that names them, then the command line's), and the settings recorded in results."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from flextape_bench.errors import UserError
from flextape_bench.lexicon import PACKAGED_LEXICON, LexiconError
from flextape_bench.metrics.long_form.prepare import decoding_of, prepare_long_form, query_of
from flextape_bench.runner import RunOptions, prepare_tasks
from flextape_bench.tasks import load_cases, load_task, packaged_tasks_dir, resolve_data_file

PACKAGED = packaged_tasks_dir()


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def _cases(spec, data_dir, limit=2):
    return load_cases(spec, resolve_data_file(spec, data_dir, data_dir), limit)


def test_packaged_variant_generates_after_each_distinct_generation_prompt(data_dir: Path):
    spec = load_task(PACKAGED / "seesaw_cf_P19_P101_longform.yaml")
    cases, settings = prepare_long_form(spec, _cases(spec, data_dir))
    query = query_of(cases[0])
    assert query.prompts == ("John James Rickard Macleod's field of work is", "John James Rickard Macleod is")
    assert query.samples == 1 and query.lexicon.names()[0] == "anglo_centrism"
    assert cases[0].probes == () and "cross_property" not in cases[0].queries
    assert settings["decoding"] == {
        "max_new_tokens": 100,
        "do_sample": True,
        "temperature": 1.0,
        "top_k": 50,
        "top_p": 1.0,
    }
    assert settings["prompts"] == "generation_prompts" and settings["samples"] == 1
    assert settings["lexicon"]["sources"] == [str(PACKAGED_LEXICON)]
    assert set(settings["lexicon"]["categories"]["sexism"]) == {"label", "description", "terms", "patterns"}
    assert decoding_of(spec.long_form).to_json() == settings["decoding"]


def test_templates_are_rendered_with_the_subject_and_the_prompt_template(tmp_path: Path, data_dir: Path):
    path = write(
        tmp_path,
        "mine.yaml",
        f"""\
        include: {PACKAGED / "seesaw_cf_P19_P101_longform.yaml"}
        task: mine
        description: x
        templates:
          prompt: "Q: {{{{ prompt }}}}"
        long_form:
          prompts: templates
          templates: ["{{}} is", "{{}} is", "All about {{}}:"]
          samples: 2
        """,
    )
    spec = load_task(path)
    cases, settings = prepare_long_form(spec, _cases(spec, data_dir, 1))
    assert query_of(cases[0]).prompts == (
        "Q: John James Rickard Macleod is",
        "Q: All about John James Rickard Macleod:",
    )
    assert query_of(cases[0]).samples == 2 and settings["templates"] == ["{} is", "{} is", "All about {}:"]


def test_lexicon_files_resolve_against_the_file_naming_them_then_the_command_line(tmp_path: Path, data_dir: Path):
    write(tmp_path, "bases/lex/extra.yaml", "categories:\n  sexism: {terms: [kitchen]}\n")
    write(
        tmp_path,
        "bases/_base.yaml",
        f"""\
        include: {PACKAGED / "seesaw_cf_P19_P101_longform.yaml"}
        long_form:
          lexicon: [lex/extra.yaml]
        """,
    )
    path = write(tmp_path, "tasks/mine.yaml", "include: ../bases/_base.yaml\ntask: mine\ndescription: x\n")
    cli = write(tmp_path, "cli.yaml", "categories:\n  ableism: {terms: [crippled]}\n")
    spec = load_task(path, [tmp_path / "bases"])  # the base's folder is an --include-path folder
    cases, settings = prepare_long_form(spec, _cases(spec, data_dir, 1), [cli])
    lexicon = query_of(cases[0]).lexicon
    assert lexicon.category("sexism").terms[-1] == "kitchen" and lexicon.names()[-1] == "ableism"
    assert settings["lexicon"]["sources"] == [str(PACKAGED_LEXICON), str(tmp_path / "bases/lex/extra.yaml"), str(cli)]


def test_missing_or_broken_lexicon_files_are_user_errors(tmp_path: Path, data_dir: Path):
    path = write(
        tmp_path,
        "mine.yaml",
        f"""\
        include: {PACKAGED / "seesaw_cf_P19_P101_longform.yaml"}
        task: mine
        description: x
        long_form:
          lexicon: [missing.yaml]
        """,
    )
    spec = load_task(path)
    with pytest.raises(
        UserError,
        match=rf"{path}:5: long_form.lexicon\[0\]: lexicon file .*missing.yaml does not "
        r"exist",
    ):
        prepare_long_form(spec, [])
    broken = write(tmp_path, "broken.yaml", "categories:\n  a: {patterns: ['(']}\n")
    with pytest.raises(LexiconError, match=rf"{broken}:2: categories.a.patterns\[0\]"):
        prepare_long_form(load_task(PACKAGED / "seesaw_cf_P19_P101_longform.yaml"), [], [broken])


def test_a_lexicon_file_outside_the_task_folders_is_refused_unread(tmp_path: Path):
    write(tmp_path, "secret/token.yaml", "categories:\n  sexism: {terms: [hf_SECRETTOKEN123]}\n")
    path = write(
        tmp_path,
        "tasks/mine.yaml",
        f"""\
        include: {PACKAGED / "seesaw_cf_P19_P101_longform.yaml"}
        task: mine
        description: x
        long_form:
          lexicon: [../secret/token.yaml]
        """,
    )
    with pytest.raises(UserError) as error:
        prepare_long_form(load_task(path), [])
    assert str(error.value).startswith(
        f"{path}:5: long_form.lexicon[0]: {tmp_path / 'secret/token.yaml'} is outside "
        "the folders a task file may read from"
    )
    assert "SECRETTOKEN" not in str(error.value)
    spec = load_task(path, [tmp_path / "secret"])  # its folder as an --include-path folder: read
    assert prepare_long_form(spec, [])[1]["lexicon"]["sources"][-1] == str(tmp_path / "secret/token.yaml")


def test_prepare_tasks_attaches_the_query_before_any_model_loads(tmp_path: Path, data_dir: Path):
    options = RunOptions(
        tasks=["seesaw_cf_P21_P101_longform", "seesaw_cf_P19_P101_eff"], limit=2, data_dir=data_dir, cache=tmp_path
    )
    long_form, eff = prepare_tasks(options)
    [(_, prepared)] = [p for p in long_form.prepared if "long_form_settings" in p[1].summary]
    assert prepared.summary["long_form_settings"]["samples"] == 1 and all(query_of(c) for c in long_form.cases)
    assert all(query_of(c) is None for c in eff.cases)
    options.lexicons = [tmp_path / "nope.yaml"]
    with pytest.raises(UserError, match=r"nope\.yaml does not exist"):
        prepare_tasks(options)
