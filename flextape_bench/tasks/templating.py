"""Jinja2 templates of task specs: one sandboxed environment, compiled once, strict about undefined variables."""
from __future__ import annotations

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

ENV = SandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


def compile_template(source: str) -> jinja2.Template:
    """Compile a template checked by `template_problem`."""
    return ENV.from_string(source)


def template_problem(source: str, variable: str) -> str | None:
    """Why `source` is not a valid template over the single variable `variable`, or None when it is."""
    try:
        parsed = ENV.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return f"template syntax error at template line {exc.lineno}: {exc.message}; fix the Jinja2 syntax"
    unknown = sorted(meta.find_undeclared_variables(parsed) - {variable})
    if unknown:
        return f"template uses undefined variable(s) {', '.join(unknown)}; the only variable here is {variable!r}"
    return None
