"""Jinja2 templates of task specs: one sandboxed environment, compiled once, strict about undefined variables.

A template comes from a task file, so its work is bounded: no loop inside a loop, no macros, no other templates and
no block that captures its output (`{% set %}...{% endset %}`, `{% filter %}`) (refused when the spec is read); no
value beyond MAX_RENDERED_CHARS is built: a string, bytes, list, tuple or dict counts every character, byte and item
it holds, nested ones included, so shared references cannot multiply it (refused before the operation that would
build it, where its size is known up front: repeats, joins, replacements; else right after: every other operator,
literal, `~`, call, filter, attribute and item); a range has at most MAX_RENDERED_CHARS items; and rendering stops
once the text passes MAX_RENDERED_CHARS, or once its own steps have taken RENDER_CPU_SECONDS of CPU time (the
rendering thread's, less the garbage collections run in it: a full collection scans the whole process's heap, which
takes seconds in a large process whatever the template).
"""

from __future__ import annotations

import contextvars
import functools
import gc
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from flextape_bench.errors import UserError

MAX_RENDERED_CHARS = 10_000  # longest text a template may render (prompts are far shorter); also the largest value
# (characters and items, nested ones included) or number it may build on the way
_UNBOUNDED = (
    (nodes.Macro, "a macro"),
    (nodes.CallBlock, "a macro"),
    ((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends), "an include, import or extends"),
    ((nodes.AssignBlock, nodes.FilterBlock), "a block that captures its output ({% set %} or {% filter %})"),
)
_AMPLIFIERS = ("indent", "wordwrap", "urlize", "tojson")  # filters whose output multiplies their input: not offered
RENDER_CPU_SECONDS = 1.0  # a prompt renders in microseconds; a template whose steps take longer in all is refused
_deadline = contextvars.ContextVar("template_deadline", default=math.inf)  # `_steps_time`, set by `render`
_TEXTS = (str, bytes, bytearray)  # measured by their length (`.encode()` gives bytes)
_TOO_LONG = f"the template builds a text or list longer than the limit {MAX_RENDERED_CHARS}"


def _size(value: Any) -> int:
    """The characters and items `value` holds, nested values counted each time they are referred to; counting stops
    past MAX_RENDERED_CHARS (so it costs at most that many steps)."""
    if isinstance(value, _TEXTS):
        return len(value)
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if not isinstance(value, (list, tuple)):
        return 1
    total = len(value)
    for item in value:
        if total > MAX_RENDERED_CHARS:
            break
        total += _size(item)
    return total


class _CollectionTime(threading.local):
    """CPU time this thread has spent in garbage collections: `started` while one runs, `seconds` in all."""

    started = 0.0
    seconds = 0.0


_collections = _CollectionTime()


def _count_collection(phase: str, info: dict[str, int]) -> None:
    """gc callback: adds each collection's thread CPU time to `_collections` (a collection runs in the thread whose
    allocation triggered it)."""
    if phase == "start":
        _collections.started = time.thread_time()
    else:
        _collections.seconds += time.thread_time() - _collections.started


gc.callbacks.append(_count_collection)


def _steps_time() -> float:
    """This thread's CPU time less its garbage collections: what a render's steps cost."""
    return time.thread_time() - _collections.seconds


def _held(value: Any) -> Any:
    """`value`, after checking that what it holds (`_size`) is at most MAX_RENDERED_CHARS: what a template may print;
    and that the render is within its CPU time (each step is bounded, so checking between steps suffices)."""
    if _steps_time() > _deadline.get():
        raise SecurityError(f"the template takes more than {RENDER_CPU_SECONDS:g} s of CPU time to render")
    if isinstance(value, (*_TEXTS, list, tuple, dict)) and _size(value) > MAX_RENDERED_CHARS:
        raise SecurityError(_TOO_LONG)
    return value


def _bounded(value: Any) -> Any:
    """`value`, after checking its size (`_held`), or a number's magnitude, against MAX_RENDERED_CHARS: what a
    template may compute with."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > MAX_RENDERED_CHARS:
        raise SecurityError(f"the template builds a number beyond the limit {MAX_RENDERED_CHARS}")
    return _held(value)


def _drawn(value: Any) -> Any:
    """A lazy value (a filter's generator: map, select, ...) drawn into a list, its size checked item by item; any
    other value bounded."""
    if not isinstance(value, Iterator):
        return _bounded(value)
    items: list[Any] = []
    total = 0
    for item in value:
        total += 1 + _size(item)
        if total > MAX_RENDERED_CHARS:
            raise SecurityError(_TOO_LONG)
        items.append(item)
    return items


def _check_join(items: list[Any], separator: str | bytes | bytearray) -> None:
    if sum(_size(item) for item in items) + len(separator) * max(len(items) - 1, 0) > MAX_RENDERED_CHARS:
        raise SecurityError(_TOO_LONG)


def _check_replace(text: Any, old: Any, new: Any, count: int | None = None) -> None:
    if not all(isinstance(value, (bytes, bytearray)) for value in (text, old, new)):
        text, old, new = str(text), str(old), str(new)  # as the replace filter converts them
    found = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        found = min(found, count)
    if len(text) + found * max(len(new) - len(old), 0) > MAX_RENDERED_CHARS:
        raise SecurityError(_TOO_LONG)


def _repeat_length(left: Any, right: Any) -> int:
    """The size of `left * right` where it repeats a text or list (known before it is built), else 0."""
    for items, times in ((left, right), (right, left)):
        if isinstance(items, (*_TEXTS, list, tuple)) and isinstance(times, int):
            return _size(items) * times
    return 0


def _guarded(name: str, function: Callable) -> Callable:
    """The filter `function` with its arguments and result bounded (lazy arguments drawn), and the size of a join or
    replacement checked before it is built."""

    @functools.wraps(function)  # keeps jinja's pass_context/pass_environment marks
    def guarded(*args: Any, **kwargs: Any) -> Any:
        args = tuple(_drawn(value) for value in args)
        kwargs = {key: _drawn(value) for key, value in kwargs.items()}
        values = [value for value in args if not isinstance(value, (jinja2.nodes.EvalContext, jinja2.Environment))]
        if name == "join" and values:
            _check_join(list(values[0]), str(values[1] if len(values) > 1 else kwargs.get("d", "")))
        if name == "replace" and len(values) >= 3:
            _check_replace(*values[:4])
        return _bounded(function(*args, **kwargs))

    return guarded


def _bounded_range(*args: int) -> range:
    items = range(*args)
    if len(items) > MAX_RENDERED_CHARS:
        raise SecurityError(f"the template makes a range of more than {MAX_RENDERED_CHARS} items")
    return items


class _BoundedCode(CodeGenerator):
    """Jinja's code generator, with every `~` concatenation and list, tuple and dict literal passed through
    `environment.bounded` (Jinja builds them in the compiled code, beyond the sandbox's hooks)."""

    def _wrapped(self, visit: Callable[[Any, Frame], None], node: Any, frame: Frame) -> None:
        self.write("environment.bounded(")
        visit(node, frame)
        self.write(")")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self._wrapped(super().visit_Concat, node, frame)

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._wrapped(super().visit_List, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._wrapped(super().visit_Dict, node, frame)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx == "load":  # not a loop's or assignment's target
            self._wrapped(super().visit_Tuple, node, frame)
        else:
            super().visit_Tuple(node, frame)


class _BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox (no private attributes, no mutation of lists and dicts, range() bounded) with every operator,
    call and attribute bounded by MAX_RENDERED_CHARS."""

    intercepted_binops = frozenset(["+", "-", "*", "/", "//", "%", "**"])
    code_generator_class = _BoundedCode

    def __init__(self) -> None:
        super().__init__(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False, finalize=_held)
        self.filters = {
            name: _guarded(name, function)
            for name, function in self.filters.items()
            if name not in ("format", *_AMPLIFIERS)
        }
        del self.globals["lipsum"]  # its sizes multiply: n paragraphs of up to `max` words
        self.globals["range"] = _bounded_range

    @staticmethod
    def bounded(value: Any) -> Any:
        """A value the compiled template built (a `~` concatenation, a list, tuple or dict literal), bounded."""
        return _bounded(value)

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        for operand in (left, right):
            _bounded(operand)
        if operator == "%" and isinstance(left, str):
            raise SecurityError("printf-style formatting (%) is not allowed in task templates; join texts with ~")
        if operator == "*" and _repeat_length(left, right) > MAX_RENDERED_CHARS:
            raise SecurityError(f"the template repeats a text or list beyond the limit {MAX_RENDERED_CHARS}")
        return _bounded(super().call_binop(context, operator, left, right))

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        args = tuple(_drawn(value) for value in args)
        kwargs = {key: _drawn(value) for key, value in kwargs.items()}
        text, method = getattr(__obj, "__self__", None), getattr(__obj, "__name__", "")
        if isinstance(text, _TEXTS) and method in ("expandtabs", "translate"):
            raise SecurityError(
                f"{type(text).__name__}.{method} is not allowed in task templates (its output multiplies its input)"
            )
        if isinstance(text, _TEXTS) and method == "join" and args:
            args = (list(args[0]), *args[1:])
            _check_join(args[0], text)
        if isinstance(text, _TEXTS) and method == "replace" and len(args) >= 2:
            _check_replace(text, *args[:3])
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
            "no capturing blocks, no other templates)"
        )
    return None


def render(template: jinja2.Template, where: str, **variables: str) -> str:
    """`template` rendered with `variables`; UserError starting with `where` (file, template key, task and case)
    when the template fails, builds more than MAX_RENDERED_CHARS or takes more than RENDER_CPU_SECONDS."""
    pieces, size = [], 0
    budget = _deadline.set(_steps_time() + RENDER_CPU_SECONDS)  # CPU time: a suspended process does not count
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
    finally:
        _deadline.reset(budget)
    return "".join(pieces)
