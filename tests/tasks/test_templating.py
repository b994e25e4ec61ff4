"""Task templates: what a prompt or target template is for renders as plain Jinja2 would render it; the bounds of
`tasks.templating` refuse only what builds more than MAX_RENDERED_CHARS (tests/test_bad_input_specs.py)."""

from __future__ import annotations

import jinja2
import pytest

from flextape_bench.tasks.templating import compile_template, render, template_problem

SUBJECT = "Ada Lovelace"


@pytest.mark.parametrize(
    "source",
    [
        "{{ subject }} works in the field of",
        "{{ subject | trim | upper }} was born in {{ 1815 }}; {{ 20000 }} people",  # printed numbers are not sizes
        "{{ subject.split(' ') | join('_') }} {{ subject.replace('Ada', 'Augusta') }}",
        "{{ [subject, 'a mathematician'] | join(', ') }}, {{ {'who': subject}['who'] }} {{ (subject, 1)[0] }}",
        "{% for word in subject.split(' ') %}{{ loop.index }}:{{ word }} {% endfor %}",
        "{% for a, b in [(1, 2)] %}{{ a + b }}{% endfor %} {{ subject ~ ' is' }} {{ '-' * 40 }}",
        "{{ subject.split(' ') | map('lower') | join(' ') }} {{ range(3) | list }} {{ subject | length }}",
    ],
)
def test_ordinary_templates_render_as_jinja_renders_them(source):
    assert template_problem(source, "subject") is None
    expected = jinja2.Environment(keep_trailing_newline=True).from_string(source).render(subject=SUBJECT)
    assert render(compile_template(source), "t.yaml: templates.prompt", subject=SUBJECT) == expected
