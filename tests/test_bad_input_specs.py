"""Bad input from task files and data files that could leak a file or exhaust the machine: includes outside the
allowed folders, YAML anchors and aliases, templates that would build huge texts, JSON nested too deeply, and data
files with no records. Each is one line on stderr, exit code 2, before the model loads, quoting no file content."""

from __future__ import annotations

import contextlib
import json
import signal
from pathlib import Path

import pytest
from bad_input import Workspace, record, refused

from flextape_bench.cli import main
from flextape_bench.tasks import packaged_tasks_dir

SECRET = "hf_SECRETTOKEN123"


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail with TimeoutError when the block runs longer than `seconds` (code that hangs fails, not blocks)."""

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def allowed_folders(ws: Workspace) -> str:
    return f"{ws.tasks}, {packaged_tasks_dir()}"


def main_ok(capsys, argv: list[str]) -> str:
    """Run the CLI; assert exit code 0; return what it printed."""
    capsys.readouterr()
    assert main(argv) == 0, capsys.readouterr().err
    return capsys.readouterr().out.strip()


# 1. includes -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["relative", "absolute", "symlink"])
@pytest.mark.parametrize("command", ["run", "validate"])
def test_include_outside_the_allowed_folders_names_no_content(capsys, ws, no_model, how, command):
    secret = ws.root / "home" / "token"
    secret.parent.mkdir()
    secret.write_text(f"{SECRET}\n")
    written = {"relative": "../home/token", "absolute": str(secret), "symlink": "_innocent.yaml"}[how]
    if how == "symlink":
        (ws.tasks / "_innocent.yaml").symlink_to(secret)
    spec = ws.task("mine", [record(1)])
    spec.write_text(f"include: {written}\n" + spec.read_text().split("\n", 1)[1])
    argv = ["validate", str(spec)] if command == "validate" else ws.run_args("mine")
    line = refused(
        capsys,
        ws,
        argv,
        f"{spec}:1: include: {secret} is outside the folders a task file may include "
        f"from ({allowed_folders(ws)}); move it into one of them or add its folder with "
        "--include-path",
    )
    assert SECRET not in line


def test_include_from_another_include_path_folder(capsys, ws, no_model):
    other = ws.root / "bases"
    other.mkdir()
    (other / "_base.yaml").write_text(f"include: {packaged_tasks_dir() / '_seesaw_cf_eff.yaml'}\n")
    spec = ws.task("mine", [record(1)])
    spec.write_text(f"include: {other / '_base.yaml'}\n" + spec.read_text().split("\n", 1)[1])
    refused(capsys, ws, ["validate", str(spec)], f"{spec}:1: include: {other / '_base.yaml'} is outside")
    assert main_ok(capsys, ["validate", str(spec), "--include-path", str(other)]) == f"{spec}: ok"


@pytest.mark.parametrize("command", ["run", "validate"])
def test_include_of_an_unknown_packaged_name_is_one_line_with_file_and_line(capsys, ws, no_model, command):
    spec = ws.task("mine", [record(1)])
    spec.write_text("task: mine\ninclude: seesaw_cf_P19_P10\n")  # the packaged task seesaw_cf_P19_P101, mistyped
    argv = ["validate", str(spec)] if command == "validate" else ws.run_args("mine")
    refused(
        capsys,
        ws,
        argv,
        f"{spec}:2: include: 'seesaw_cf_P19_P10' names no file next to this file or in ",  # run: --include-path too
        f"{packaged_tasks_dir()}, nor a packaged task; did you mean 'seesaw_cf_P19_P101'?",
    )


def test_unreadable_character_is_one_line_with_its_line(capsys, ws, no_model):
    path = ws.tasks / "broken.yaml"
    path.write_text(f"task: broken\ndescription: x\ntoken: {SECRET}\x01\n")
    line = refused(
        capsys,
        ws,
        ["validate", str(path)],
        f"{path}:3: (top level): YAML syntax error: unacceptable character #x0001: special characters are not allowed",
    )
    assert SECRET not in line


# 2. YAML anchors, aliases and deep nesting -----------------------------------------------------------------------

ALIAS_ADVICE = "YAML anchors (&name) and aliases (*name) are not allowed; write each value out"


def test_recursive_alias(capsys, ws, no_model):
    spec = ws.task("mine", [record(1)])
    spec.write_text(spec.read_text() + "metrics: &loop [*loop]\n")
    refused(capsys, ws, ws.run_args("mine"), f"{spec}:8: (top level): {ALIAS_ADVICE}")


def test_alias_bomb_is_refused_at_once(capsys, ws, no_model):
    spec = ws.task("mine", [record(1)])
    levels = [f"  l0: &l0 [{', '.join(['x'] * 10)}]"]
    levels += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]  # 10**10 strings
    spec.write_text(spec.read_text() + "fields:\n" + "\n".join(levels) + "\n")
    with deadline(10):
        refused(capsys, ws, ws.run_args("mine"), f"{spec}:9: (top level): {ALIAS_ADVICE}")


def test_deeply_nested_yaml(capsys, ws, no_model):
    path = ws.tasks / "deep.yaml"
    path.write_text(f"task: deep\ndescription: {'[' * 5000}{']' * 5000}\n")
    refused(
        capsys, ws, ["validate", str(path)], f"{path}:1: (top level): the YAML is nested too deeply to read; flatten it"
    )


# 3. templates that would build huge texts ------------------------------------------------------------------------


def templated(ws: Workspace, prompt: str) -> Path:
    spec = ws.task("mine", [record(1)])
    spec.write_text(spec.read_text() + f"templates:\n  prompt: {json.dumps(prompt)}\n")
    return spec


NUMBER = "the template builds a number beyond the limit 10000"
TOO_LONG = "the template builds a text or list longer than the limit 10000"
A = "(prompt[:1] * 5000)"  # 5,000 characters: within the limit, and a list of them too


@pytest.mark.parametrize(
    "prompt, why",
    [
        ("{{ prompt * 10**15 }}", NUMBER),
        ("{{ prompt * 1000000000000000 }}", NUMBER),
        ("{{ prompt ~ prompt|center(1000000000000000) }}", NUMBER),
        ("{{ prompt * 5000 }}", "the template repeats a text or list beyond the limit 10000"),
        (
            "{% set ns = namespace(x=prompt) %}{% for i in range(16) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x }}",
            TOO_LONG,
        ),
        # shared references: each step doubles what a value holds (2^40 copies of the prompt, 2^40 leaves)
        ("{% set a = prompt %}" + "{% set a = a ~ a %}" * 40 + "{{ a|length }}", TOO_LONG),
        ("{% set a = [prompt] %}" + "{% set a = [a, a] %}" * 40 + "{{ a }}", TOO_LONG),
        (f"{{{{ [[{A}] * 2] * 2 }}}}", "the template repeats a text or list beyond the limit 10000"),
        # sizes known before the result is built: joins, replacements, a lazy filter's items
        ("{{ (prompt * 100).encode('utf-32') * 10000 }}", "the template repeats a text or list beyond the limit 10000"),
        (f"{{{{ {A}.encode().replace(prompt[:1].encode(), {A}.encode()) }}}}", TOO_LONG),
        (f"{{{{ {A}|list|join({A}) }}}}", TOO_LONG),
        (f"{{{{ {A}|replace(prompt[:1], {A}) }}}}", TOO_LONG),
        (f"{{{{ {A}.replace(prompt[:1], {A}) }}}}", TOO_LONG),
        (f"{{{{ {A}.join(range(2000)|map('string')) }}}}", TOO_LONG),
        (f"{{{{ {A}.join(range(5000)|map('string')) }}}}", TOO_LONG),
        (
            "{{ ('a' ~ prompt).expandtabs(10000) }}",
            "str.expandtabs is not allowed in task templates (its output multiplies its input)",
        ),
        (  # each step bounded, but 10,000 of them (about 70 s unchecked)
            f"{{% for i in range(10000) %}}{{{{ {A}|replace(prompt[:1], 'b')|sort|unique|list|length }}}}{{% endfor %}}",
            "the template takes more than 1 s of CPU time to render",
        ),
        (
            "{% for i in range(10000) %}{{ prompt }}{% endfor %}",
            "the rendered text is longer than the limit 10000 characters",
        ),
        (
            "{{ prompt ~ ('%01000000000000000d' % 1) }}",
            "printf-style formatting (%) is not allowed in task templates; join texts with ~",
        ),
        (
            "{{ prompt ~ '{:>1000000000000000}'.format(1) }}",
            "str.format is not allowed in task templates (its widths are unbounded); join texts with ~",
        ),
    ],
)
def test_template_that_builds_a_huge_text(capsys, ws, no_model, prompt, why):
    spec = templated(ws, prompt)
    with deadline(10):
        refused(
            capsys,
            ws,
            ws.run_args("mine"),
            f"{spec}: templates.prompt: rendering failed for task mine, case_id 1 ({why}); fix the template",
        )


UNBOUNDED = (
    "whose work is unbounded; write the text out (at most one loop, no macros, no capturing blocks, no other templates)"
)


@pytest.mark.parametrize(
    "prompt, why",
    [
        (
            "{% for a in prompt %}{% for b in prompt %}{% endfor %}{% endfor %}{{ prompt }}",
            f"the template uses a loop inside a loop, {UNBOUNDED}",
        ),
        (
            "{% macro twice(x) %}{{ x }}{{ x }}{% endmacro %}{{ twice(prompt) }}",
            f"the template uses a macro, {UNBOUNDED}",
        ),
        ("{% include 'other' %}{{ prompt }}", f"the template uses an include, import or extends, {UNBOUNDED}"),
        (
            "{% set x %}{% for c in prompt %}{{ prompt }}{% endfor %}{% endset %}{{ x|length }}",
            f"the template uses a block that captures its output ({{% set %}} or {{% filter %}}), {UNBOUNDED}",
        ),
        ("{{ " + "(" * 5000 + "prompt" + ")" * 5000 + " }}", "the template is nested too deeply to read; simplify it"),
    ],
    ids=["loop in loop", "macro", "include", "capture", "nested"],
)
def test_template_with_unbounded_work_is_refused_where_written(capsys, ws, no_model, prompt, why):
    spec = templated(ws, prompt)
    refused(capsys, ws, ws.run_args("mine"), f"{spec}:9: templates.prompt: {why}")


def test_template_that_fails_in_python(capsys, ws, no_model):
    spec = templated(ws, "{{ prompt + 1 }}")
    refused(
        capsys,
        ws,
        ws.run_args("mine"),
        f"{spec}: templates.prompt: rendering failed for task mine, case_id 1 (TypeError: ",
    )


# 4. data files ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, why",
    [
        (b"", "the file is empty; re-download it"),
        (b"  \n", "the file is empty; re-download it"),
        (b"[]", "the file has no records; re-download it"),
        (b"[" * 100000 + b"]" * 100000, "invalid JSON (nested too deeply to read); re-download the file"),
        (b'[{"case_id": 1, "x": "\xff"}]', "not UTF-8 text (byte 0xff at offset 22); re-download the file"),
    ],
    ids=["zero bytes", "blank", "no records", "nested", "not UTF-8"],
)
def test_data_file_that_cannot_give_cases(capsys, ws, no_model, content, why):
    data = ws.data / "mine.json"
    data.write_bytes(content)
    ws.task("mine")
    refused(capsys, ws, ws.run_args("mine"), f"{data}: {why} (dataset.file)")
