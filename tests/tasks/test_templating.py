"""Task templates: what a prompt or target template is for renders as plain Jinja2 would render it; the bounds of
`tasks.templating` refuse only what builds more than MAX_RENDERED_CHARS or takes more than RENDER_CPU_SECONDS of the
template's own steps (tests/test_bad_input_specs.py)."""

from __future__ import annotations

import gc
import math
import time

import jinja2
import pytest

from flextape_bench.tasks import templating
from flextape_bench.tasks.templating import RENDER_CPU_SECONDS, compile_template, render, template_problem

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


def test_a_garbage_collection_during_a_render_is_not_the_templates_time():
    """In a large process (the test suite, a run with many cases), a full collection triggered inside a render takes
    seconds; here the first collection once the render's clock runs burns 1.5 x RENDER_CPU_SECONDS of CPU, and the
    render still passes."""
    burned = []

    def slow_collection(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and not burned and templating._deadline.get() < math.inf:
            burned.append(time.thread_time())
            while time.thread_time() - burned[0] < 1.5 * RENDER_CPU_SECONDS:
                pass

    thresholds = gc.get_threshold()
    gc.callbacks.append(slow_collection)
    gc.set_threshold(1)  # a collection at each allocation
    try:
        text = render(compile_template("{{ subject }} was born in"), "t.yaml: templates.prompt", subject=SUBJECT)
    finally:
        gc.set_threshold(*thresholds)
        gc.callbacks.remove(slow_collection)
    assert burned, "no collection ran during the render"
    assert text == "Ada Lovelace was born in"
