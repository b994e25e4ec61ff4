"""Typed fields: Located mappings into `spec_field` dataclasses, each problem with file, line and dotted key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NewType

from flextape_bench.specfile import (
    INVALID,
    Converter,
    Located,
    Problems,
    as_located,
    parse_located,
    positive,
    spec_field,
)

Slot = NewType("Slot", int)


def _pair(value: list[int]) -> str | None:
    return None if len(value) == 2 else f"{value} is not a pair"


@dataclass(frozen=True, kw_only=True)
class Inner:
    name: str = spec_field("a name")
    mode: Literal["fast", "slow"] = spec_field("speed", default="fast")


@dataclass(frozen=True, kw_only=True)
class Outer:
    count: int = spec_field("how many", check=positive)
    rate: float = spec_field("a rate", default=1.0)
    flag: bool = spec_field("on or off", default=False)
    tags: tuple[str, ...] = spec_field("tags", default=(), nonempty=True)
    pairs: list[list[int]] | None = spec_field("pairs", default=None, check=_pair)
    slots: list[Slot] | None = spec_field("slot indices", default=None)
    inner: Inner | None = spec_field("a section", default=None)

    def cross_check(self) -> list[tuple[str, str]]:
        return [("flag", "a flag needs tags")] if self.flag and not self.tags else []


def convert(tmp_path: Path, text: str, **options) -> tuple[Any, list[str]]:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    converter = Converter(Problems(), **options)
    value = converter.spec_class(parse_located(path), Outer, "")
    return value, [str(p).removeprefix(f"{path.resolve()}:") for p in converter.problems]


def test_a_valid_mapping_converts(tmp_path):
    value, problems = convert(
        tmp_path, "count: 2\nrate: 3\ntags: [a]\npairs: [[1, 2]]\nslots: [0, 4]\ninner: {name: n}\n"
    )
    assert problems == []
    assert value == Outer(
        count=2, rate=3.0, tags=("a",), pairs=[[1, 2]], slots=[Slot(0), Slot(4)], inner=Inner(name="n")
    )
    assert isinstance(value.rate, float)


def test_whole_numbers_stay_whole_where_asked(tmp_path):
    value, _ = convert(tmp_path, "count: 2\nrate: 3\n", floats=False)
    assert value.rate == 3 and isinstance(value.rate, int)


def test_every_problem_with_line_and_key(tmp_path):
    value, problems = convert(
        tmp_path,
        """\
count: '3'
rate: 1e-3
flag: yes please
tags: []
pairs:
  - [1, 2]
  - [1]
slots: [1, x]
inner:
  nam: n
  mode: fsat
extra: 1
""",
    )
    assert value is INVALID
    assert problems == [
        "1: count: expected a whole number, got the string '3'; drop the quotes",
        "2: rate: expected a number, got the string '1e-3'; drop the quotes, and write exponents with a decimal point "
        "(1.0e-3, not 1e-3)",
        "3: flag: expected true or false, got the string 'yes please'",
        "4: tags: the list is empty; name at least one",
        "7: pairs[1]: [1] is not a pair",
        "8: slots[1]: expected a whole number, got the string 'x'",
        "10: inner.nam: unknown key; did you mean 'name'?",
        "11: inner.mode: the string 'fsat' is not one of fast, slow; did you mean 'fast'?",
        "9: inner.name: required key missing; add `name:` (a name)",
        "12: extra: unknown key; known: count, rate, flag, tags, pairs, slots, inner",
    ]


def test_checks_ranges_and_cross_checks(tmp_path):
    _, problems = convert(
        tmp_path,
        "count: 0\nrate: .nan\nflag: true\nslots: [1, 7]\n",
        type_checks={Slot: lambda slot: None if slot < 5 else f"slot {slot} does not exist"},
    )
    assert problems == [
        "1: count: 0 must be greater than 0",
        "2: rate: expected a finite number, got the float nan",
        "4: slots[1]: slot 7 does not exist",
    ]
    _, problems = convert(tmp_path, "count: 1\nflag: true\n")
    assert problems == ["2: flag: a flag needs tags"]


def test_missing_keys_only_where_required(tmp_path):
    _, problems = convert(tmp_path, "rate: 2.0\n")
    assert problems == ["1: count: required key missing; add `count:` (how many)"]
    _, problems = convert(tmp_path, "rate: 2.0\n", require=False)
    assert problems == []


def test_command_line_values_get_command_line_hints():
    """A flag's value has no YAML quoting to fix: no quoting hints, and lists written as on the command line."""
    where = Path("--flag")
    for converter, hints in ((Converter(Problems()), True), (Converter(Problems(), command_line=True), False)):
        for value, tp in ((7, str), ("3", int), (4, list[int])):
            assert converter.value(as_located(value, where, 0), tp, "key") is INVALID
        assert [p.message for p in converter.problems] == [
            "expected a string, got the int 7" + ("; put it in quotes" if hints else ""),
            "expected a whole number, got the string '3'" + ("; drop the quotes" if hints else ""),
            "expected a list, got the int 4; "
            + ("write `[a, b]` or one `- item` per line" if hints else "write e.g. [1, 2]"),
        ]


def test_not_a_mapping(tmp_path):
    converter = Converter(Problems())
    assert converter.spec_class(Located([1], tmp_path, 3), Outer, "sec") is INVALID
    assert converter.problems[0].message == "expected a mapping of keys (see Outer), got a list"
