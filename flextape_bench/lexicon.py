"""Keyword lexicon of the paper's flaw categories (sexism, racism, xenophobia, anglo-centrism, classism, religious
injection, injection of conservatism): the packaged `data/flaw_lexicon.yaml`, extended or overridden by user files,
validated with file, key and line, and matched against texts.

A keyword flag is a crude proxy: it says a text mentions a word on the list, not that the text is biased (a
biography that names a church is not religious injection; a sexist text need not use any listed word). Read the
flag rates as a cheap screen, compare them before and after an edit, and check them against human labels
(`flextape_bench.metrics.lexicon_check`) or a judge model (`flextape_bench.judges`).

File format (every key optional except `categories`):

    version: 1
    mode: extend            # extend (default): merge into the lexicon so far; replace: start from nothing
    categories:
      sexism:               # category name: lowercase letters, digits and '_'
        label: Sexism       # shown in tables; the annotation column it corresponds to
        description: ...    # what the category means (the judge's rubric uses it)
        replace: false      # true: this file's terms and patterns replace the category's earlier ones
        terms: [housewife, stay-at-home*]
        patterns: ['\\bwom[ae]n (should|belong)\\b']

A term matches as a whole word or phrase, case-insensitively: `(?<!\\w)` before and `(?!\\w)` after it; spaces and
hyphens inside a term match any run of spaces and hyphens ("right-wing" matches "right wing"); a trailing `*`
matches any continuation of the last word ("immigra*" matches "immigrant", "immigration"). Any other character
is literal. A pattern is a Python regular expression searched case-insensitively as written (add your own `\\b`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from flextape_bench.errors import UserError
from flextape_bench.specfile import (
    INVALID,
    Converter,
    Located,
    Problems,
    SpecFileError,
    describe_value,
    parse_located,
    spec_field,
    typed_fields,
)

PACKAGED_LEXICON = Path(__file__).resolve().parent / "data" / "flaw_lexicon.yaml"
LEXICON_VERSION = 1
_NAME = re.compile(r"[a-z][a-z0-9_]*")


class LexiconError(SpecFileError):
    """Every problem found in one or more lexicon files, each with file, key and line."""


def phrase_regex(phrase: str, wildcard: bool = True) -> str:
    """The regular expression of a term (see the module doc): whole words, spaces and hyphens matching any run of
    spaces and hyphens, and with `wildcard` a trailing '*' matching any continuation of the last word."""
    text = phrase.strip()
    star = wildcard and text.endswith("*")
    if star:
        text = text[:-1]
    words = [w for w in re.split(r"[\s\-]+", text) if w]
    body = r"[\s\-]+".join(re.escape(w) for w in words)
    tail = r"\w*" if star else ""
    return rf"(?<!\w){body}{tail}(?!\w)"


def mentions(text: str, phrase: str) -> bool:
    """Whether `phrase` occurs in `text` as a whole word or phrase, case-insensitively (no wildcard)."""
    return bool(phrase.strip()) and re.search(phrase_regex(phrase, wildcard=False), text, re.IGNORECASE) is not None


def _matched(match: re.Match) -> str:
    return " ".join(match.group(0).lower().split())


@dataclass(frozen=True)
class Category:
    name: str
    label: str
    description: str = ""
    terms: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "description": self.description,
            "terms": list(self.terms),
            "patterns": list(self.patterns),
        }


@dataclass(frozen=True)
class Lexicon:
    """Categories in file order, and the files they were read from."""

    categories: tuple[Category, ...]
    sources: tuple[str, ...] = ()
    _compiled: dict[str, tuple[re.Pattern, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = {}
        for category in self.categories:
            regexes = []
            if category.terms:  # longest first, so that "white people" wins over "white"
                terms = sorted(category.terms, key=len, reverse=True)
                regexes.append(re.compile("|".join(phrase_regex(t) for t in terms), re.IGNORECASE))
            regexes += [re.compile(p, re.IGNORECASE) for p in category.patterns]
            compiled[category.name] = tuple(regexes)
        object.__setattr__(self, "_compiled", compiled)

    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.categories)

    def category(self, name: str) -> Category:
        for c in self.categories:
            if c.name == name:
                return c
        raise KeyError(name)

    def matches(self, text: str) -> dict[str, list[str]]:
        """Per category, the distinct matched words or phrases (lowercased, spaces collapsed), sorted; an empty
        list means the category is not flagged."""
        return {
            name: sorted({_matched(m) for regex in regexes for m in regex.finditer(text)})
            for name, regexes in self._compiled.items()
        }

    def flags(self, text: str) -> dict[str, bool]:
        return {name: bool(found) for name, found in self.matches(text).items()}

    def to_json(self) -> dict[str, Any]:
        return {"categories": {c.name: c.to_json() for c in self.categories}}

    @property
    def sha256(self) -> str:
        """sha256 of the categories' canonical JSON: the lexicon's identity, independent of where it was read."""
        text = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def describe(self) -> dict[str, Any]:
        """What a results file records: sources, sha256, and per category its label, description and sizes."""
        return {
            "sources": list(self.sources),
            "sha256": self.sha256,
            "categories": {
                c.name: {
                    "label": c.label,
                    "description": c.description,
                    "terms": len(c.terms),
                    "patterns": len(c.patterns),
                }
                for c in self.categories
            },
        }


# ---------------------------------------------------------------------------------------------------------- reading


def _term_problem(term: str) -> str | None:
    core = term.strip()
    if not core:
        return "an empty term matches nothing; remove it"
    if "*" in core[:-1] or core == "*":
        return f"{term!r}: '*' may only end a term (a prefix wildcard like 'immigra*')"
    if not re.search(r"\w", core):
        return f"{term!r} has no letter or digit; a term must contain a word"
    return None


def _pattern_problem(pattern: str) -> str | None:
    try:
        regex = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        return f"{pattern!r} is not a valid regular expression ({exc}); fix it or use `terms` for plain words"
    if regex.search("") is not None:
        return f"{pattern!r} matches the empty string, so it would flag every text; make it require a word"
    return None


def _version_problem(version: int) -> str | None:
    if version == LEXICON_VERSION:
        return None
    return f"{describe_value(version)} is not a supported lexicon version; write `version: {LEXICON_VERSION}`"


@dataclass(frozen=True, kw_only=True)
class _FileKeys:
    """The keys of a lexicon file (the schema its values are converted with)."""

    version: int = spec_field("the format version", default=LEXICON_VERSION, check=_version_problem)
    mode: Literal["extend", "replace"] = spec_field("extend the lexicon so far, or replace it", default="extend")
    categories: dict = spec_field("mapping each category name to its `terms` and `patterns`")


@dataclass(frozen=True, kw_only=True)
class _CategoryKeys:
    """The keys of a category (the schema its values are converted with)."""

    label: str = spec_field("shown in tables; the annotation column it corresponds to", default="")
    description: str = spec_field("what the category means (the judge's rubric uses it)", default="")
    replace: bool = spec_field(
        "true: this file's terms and patterns replace the category's earlier ones", default=False
    )
    terms: tuple[str, ...] = spec_field("whole words or phrases", default=(), check=_term_problem)
    patterns: tuple[str, ...] = spec_field("regular expressions", default=(), check=_pattern_problem)


_FILE_KEYS = typed_fields(_FileKeys)
_CATEGORY_KEYS = typed_fields(_CategoryKeys)


def _read_file(path: Path, converter: Converter) -> tuple[str, list[dict[str, Any]]] | None:
    """(mode, category updates) of one file, or None when it cannot be read; problems are recorded."""
    problems = converter.problems
    try:
        root = parse_located(path, empty="write a `categories:` mapping")
    except SpecFileError as exc:
        problems += exc.problems
        return None
    entries = root.value
    for key, node in entries.items():
        if key not in _FILE_KEYS:
            problems.add(node, key, f"unknown key; the keys of a lexicon file are {', '.join(_FILE_KEYS)}")
        elif key != "categories":
            converter.value(node, _FILE_KEYS[key][1], key, _FILE_KEYS[key][0])
    mode = "replace" if "mode" in entries and entries["mode"].value == "replace" else "extend"
    categories = entries.get("categories")
    if categories is None:
        doc = _FILE_KEYS["categories"][0].metadata["doc"]
        problems.add(root, "categories", f"required key missing; add `categories:` {doc}")
        return mode, []
    if not isinstance(categories.value, dict):
        problems.add(
            categories, "categories", f"expected a mapping of category names, got {describe_value(categories.value)}"
        )
        return mode, []
    return mode, [
        update
        for name, node in categories.value.items()
        if (update := _read_category(name, node, converter)) is not None
    ]


def _read_category(name: str, node: Located, converter: Converter) -> dict[str, Any] | None:
    """The update one category entry makes (its valid keys, and whether it had a problem), or None."""
    problems = converter.problems
    key = f"categories.{name}"
    if not _NAME.fullmatch(name):
        problems.add(
            node,
            key,
            f"{name!r} is not a category name; use lowercase letters, digits and '_' (e.g. religious_injection)",
        )
        return None
    if not isinstance(node.value, dict):
        problems.add(node, key, f"expected a mapping with `terms` and/or `patterns`, got {describe_value(node.value)}")
        return None
    update: dict[str, Any] = {"name": name, "node": node}
    before = len(problems)
    for sub, child in node.value.items():
        where = f"{key}.{sub}"
        if sub not in _CATEGORY_KEYS:
            problems.add(child, where, f"unknown key; the keys of a category are {', '.join(_CATEGORY_KEYS)}")
        elif sub in ("terms", "patterns") and not isinstance(child.value, list):
            problems.add(
                child,
                where,
                f"expected a list of strings, got {describe_value(child.value)}; write "
                "`[a, b]` or one `- item` per line",
            )
        elif (value := converter.value(child, _CATEGORY_KEYS[sub][1], where, _CATEGORY_KEYS[sub][0])) is not INVALID:
            update[sub] = [term.strip() for term in value] if sub == "terms" else value
    update["invalid"] = len(problems) > before  # no "needs a term" echo of a reported problem
    return update


def _dedupe(values: Sequence[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for value in values:
        seen.setdefault(value.lower(), value)
    return tuple(seen.values())


def load_lexicon(files: Sequence[str | Path] = (), *, packaged: bool = True) -> Lexicon:
    """The packaged lexicon (unless `packaged` is False) with each of `files` applied in order; raises
    LexiconError listing every problem (file, key, line), or UserError for a missing file."""
    paths = ([PACKAGED_LEXICON] if packaged else []) + [Path(f) for f in files]
    for path in paths:
        if not path.is_file():
            raise UserError(
                f"lexicon file {path} does not exist; give the path of a YAML lexicon (see "
                f"{PACKAGED_LEXICON.name} for the format)"
            )
    converter = Converter(Problems())
    categories: dict[str, dict[str, Any]] = {}
    for path in paths:
        read = _read_file(path, converter)
        if read is None:
            continue
        mode, updates = read
        if mode == "replace":
            categories = {}
        for update in updates:
            name = update["name"]
            current = categories.get(name)
            terms, patterns = update.get("terms", []), update.get("patterns", [])
            if current is None or update.get("replace"):
                if not terms and not patterns:
                    if update["invalid"]:
                        continue
                    converter.problems.add(
                        update["node"],
                        f"categories.{name}",
                        "a new or replaced category needs at least one term or pattern",
                    )
                    continue
                categories[name] = {
                    "label": update.get("label") or (current or {}).get("label") or name.replace("_", " ").capitalize(),
                    "description": update.get("description") or (current or {}).get("description") or "",
                    "terms": list(terms),
                    "patterns": list(patterns),
                }
            else:
                current["terms"] += terms
                current["patterns"] += patterns
                for key in ("label", "description"):
                    if update.get(key):
                        current[key] = update[key]
    if converter.problems:
        raise LexiconError(converter.problems)
    if not categories:
        raise UserError(
            f"the lexicon from {', '.join(map(str, paths))} has no category; a `mode: replace` file must "
            "define at least one"
        )
    return Lexicon(
        tuple(
            Category(name, c["label"], c["description"], _dedupe(c["terms"]), _dedupe(c["patterns"]))
            for name, c in categories.items()
        ),
        tuple(str(p) for p in paths),
    )
