"""Jinja2 templates of task specs: one sandboxed environment, compiled once, strict about undefined variables.

A template comes from a task file, so its work is bounded: no loop inside a loop, no macros and no other templates
(refused when the spec is read); no string, list or number beyond MAX_RENDERED_CHARS is built (refused before the
operation that would build it, where its size is known up front, else right after); and rendering stops once the
text passes MAX_RENDERED_CHARS.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from flextape_bench.errors import UserError

MAX_RENDERED_CHARS = 10_000  # longest text a template may render (prompts are far shorter); also the largest string,
# list or number it may build on the way
_UNBOUNDED = (
    (nodes.Macro, "a macro"),
    (nodes.CallBlock, "a macro"),
    ((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends), "an include, import or extends"),
)


def _bounded(value: Any) -> Any:
    """`value`, after checking that its length (a number: its size) is at most MAX_RENDERED_CHARS."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > MAX_RENDERED_CHARS:
        raise SecurityError(f"the template builds a number beyond the limit {MAX_RENDERED_CHARS}")
    if isinstance(value, (str, list, tuple, dict)) and len(value) > MAX_RENDERED_CHARS:
        raise SecurityError(f"the template builds a text or list longer than the limit {MAX_RENDERED_CHARS}")
    return value


def _repeat_length(left: Any, right: Any) -> int:
    """The length of `left * right` where it repeats a text or list (known before it is built), else 0."""
    for items, times in ((left, right), (right, left)):
        if isinstance(items, (str, list, tuple)) and isinstance(times, int):
            return len(items) * times
    return 0


def _guarded(function: Callable) -> Callable:
    """`function` (a filter) with its arguments and result bounded."""

    @functools.wraps(function)  # keeps jinja's pass_context/pass_environment marks
    def guarded(*args: Any, **kwargs: Any) -> Any:
        for value in (*args, *kwargs.values()):
            _bounded(value)
        return _bounded(function(*args, **kwargs))

    return guarded


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox (no private attributes, no mutation of lists and dicts, range() bounded) with every operator,
    call and attribute bounded by MAX_RENDERED_CHARS."""

    intercepted_binops = frozenset(["+", "-", "*", "/", "//", "%", "**"])

    def __init__(self) -> None:
        super().__init__(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
        self.filters = {name: _guarded(function) for name, function in self.filters.items() if name != "format"}
        del self.globals["lipsum"]  # its sizes multiply: n paragraphs of up to `max` words

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        for operand in (left, right):
            _bounded(operand)
        if operator == "%" and isinstance(left, str):
            raise SecurityError("printf-style formatting (%) is not allowed in task templates; join texts with ~")
        if operator == "*" and _repeat_length(left, right) > MAX_RENDERED_CHARS:
            raise SecurityError(f"the template repeats a text or list beyond the limit {MAX_RENDERED_CHARS}")
        return _bounded(super().call_binop(context, operator, left, right))

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        for value in (*args, *kwargs.values()):
            _bounded(value)
        return _bounded(super().call(__context, __obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        return _bounded(super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        return _bounded(super().getitem(obj, argument))

    def wrap_str_format(self, value: Any) -> None:
        if super().wrap_str_format(value) is not None:  # value is some text's .format or .format_map
            raise SecurityError(
                "str.format is not allowed in task templates (its widths are unbounded); join texts with ~"
            )


ENV = _BoundedEnvironment()


def compile_template(source: str) -> jinja2.Template:
    """Compile a template checked by `template_problem`."""
    return ENV.from_string(source)


def _unbounded(parsed: nodes.Template) -> str | None:
    """What in a template could make its work unbounded (a loop inside a loop, a macro, another template)."""
    for node_types, what in _UNBOUNDED:
        if next(parsed.find_all(node_types), None) is not None:
            return what
    loops = parsed.find_all(nodes.For)
    return next(
        ("a loop inside a loop" for loop in loops if loop.recursive or next(loop.find_all(nodes.For), None)), None
    )


def template_problem(source: str, variable: str) -> str | None:
    """Why `source` is not a valid template over the single variable `variable`, or None when it is."""
    try:
        parsed = ENV.parse(source)
        ENV.compile(parsed)  # unknown filters and tests
    except jinja2.TemplateSyntaxError as exc:
        return f"template syntax error at template line {exc.lineno}: {exc.message}; fix the Jinja2 syntax"
    except RecursionError:
        return "the template is nested too deeply to read; simplify it"
    unknown = sorted(meta.find_undeclared_variables(parsed) - {variable})
    if unknown:
        return f"template uses undefined variable(s) {', '.join(unknown)}; the only variable here is {variable!r}"
    what = _unbounded(parsed)
    if what:
        return (
            f"the template uses {what}, whose work is unbounded; write the text out (at most one loop, no macros, "
            "no other templates)"
        )
    return None


def render(template: jinja2.Template, where: str, **variables: str) -> str:
    """`template` rendered with `variables`; UserError starting with `where` (file, template key, task and case)
    when the template fails or builds more than MAX_RENDERED_CHARS."""
    pieces, size = [], 0
    try:
        for piece in template.generate(**variables):
            size += len(piece)
            if size > MAX_RENDERED_CHARS:
                raise SecurityError(f"the rendered text is longer than the limit {MAX_RENDERED_CHARS} characters")
            pieces.append(piece)
    except jinja2.TemplateError as exc:
        raise UserError(f"{where} ({exc}); fix the template") from exc
    except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError, MemoryError) as exc:
        raise UserError(f"{where} ({type(exc).__name__}: {exc}); fix the template") from exc
    return "".join(pieces)
