"""The flaw lexicon: the packaged file, matching (whole words, case, hyphens, wildcards, patterns), extending and
overriding with user files, and every problem of a lexicon file reported with its file, key and line."""

import textwrap
from pathlib import Path

import pytest

from flextape_bench.errors import UserError
from flextape_bench.lexicon import (
    PACKAGED_LEXICON,
    Category,
    Lexicon,
    LexiconError,
    load_lexicon,
    mentions,
    phrase_regex,
)
from flextape_bench.metrics.agreement import ITEM_COLUMNS

PAPER_CATEGORIES = {
    "anglo_centrism": "Anglo-centrism",
    "sexism": "Sexism",
    "religious_injection": "Religious Injection",
    "xenophobia": "Xenophobia",
    "classism": "Classism",
    "racism": "Racism",
    "conservatism": "Injection of Conservatism",
}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(*files: Path, packaged: bool = False) -> list[str]:
    with pytest.raises(LexiconError) as caught:
        load_lexicon(files, packaged=packaged)
    return [str(p) for p in caught.value.problems]


def test_packaged_lexicon_has_the_paper_categories_named_like_the_annotation_columns(data_dir):
    lexicon = load_lexicon()
    assert {c.name: c.label for c in lexicon.categories} == PAPER_CATEGORIES
    assert all(c.description and (c.terms or c.patterns) for c in lexicon.categories)
    header = (data_dir / "annotations" / "a1.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert set(PAPER_CATEGORIES.values()) == set(header) - set(ITEM_COLUMNS) - {"Edit reflected?"}
    assert lexicon.sources == (str(PACKAGED_LEXICON),)


def test_terms_match_whole_words_case_insensitively():
    lexicon = Lexicon((Category("religion", "Religion", terms=("Jew", "church*", "right-wing", "U.S.")),))
    assert lexicon.matches("JEWELRY and jewellers") == {"religion": []}
    assert lexicon.matches("a Jew, two churches, the Church") == {"religion": ["church", "churches", "jew"]}
    assert lexicon.matches("right wing and Right--wing, rightwing") == {"religion": ["right wing", "right--wing"]}
    assert lexicon.matches("born in the U.S. in 1900") == {"religion": ["u.s."]}
    assert lexicon.flags("the USA") == {"religion": False}


def test_longer_terms_win_and_patterns_are_regexes():
    lexicon = Lexicon(
        (Category("racism", "Racism", terms=("white", "white people"), patterns=(r"\b(black|white) (man|woman)\b",)),)
    )
    assert lexicon.matches("White People and a black woman") == {"racism": ["black woman", "white people"]}


def test_phrase_regex_and_mentions():
    assert mentions("She is a female scientist", "female") and not mentions("She is a female scientist", "male")
    assert mentions("the Art of\nPainting", "art of painting")
    assert not mentions("anything", "  ")
    assert not mentions("immigration", "immigra*")  # mentions() is literal: no wildcard
    assert phrase_regex("immigra*") == r"(?<!\w)immigra\w*(?!\w)"


def test_a_user_file_extends_overrides_and_adds(tmp_path: Path):
    extra = write(
        tmp_path,
        "mine.yaml",
        """\
        categories:
          sexism:
            terms: [kitchen, Housewife]
          racism:
            replace: true
            label: Race talk
            terms: [race]
          ableism:
            description: demeaning disability
            terms: [crippled]
        """,
    )
    base = load_lexicon()
    lexicon = load_lexicon([extra])
    assert lexicon.names() == (*base.names(), "ableism")
    sexism = lexicon.category("sexism")
    assert sexism.terms[-1] == "kitchen" and sexism.terms[:-1] == base.category("sexism").terms  # no duplicate
    assert lexicon.category("racism") == Category(
        "racism", "Race talk", base.category("racism").description, ("race",), ()
    )
    assert lexicon.category("ableism") == Category("ableism", "Ableism", "demeaning disability", ("crippled",), ())
    assert lexicon.sources == (str(PACKAGED_LEXICON), str(extra)) and lexicon.sha256 != base.sha256


def test_mode_replace_starts_from_nothing(tmp_path: Path):
    only = write(tmp_path, "only.yaml", "version: 1\nmode: replace\ncategories:\n  a:\n    terms: [x]\n")
    assert load_lexicon([only]).names() == ("a",)


def test_sha256_follows_content_not_location(tmp_path: Path):
    text = "categories:\n  a:\n    terms: [x]\n"
    one = load_lexicon([write(tmp_path, "one.yaml", text)], packaged=False)
    two = load_lexicon([write(tmp_path, "two.yaml", text)], packaged=False)
    assert one.sha256 == two.sha256 and one.sources != two.sources


def test_every_problem_with_file_key_and_line(tmp_path: Path):
    path = write(
        tmp_path,
        "bad.yaml",
        """\
        version: 2
        mode: merge
        colour: red
        categories:
          Bad-Name:
            terms: [x]
          sexism:
            terms: ["", "a*b", 12, "..."]
            patterns: ["(unclosed", "a*", "\\\\bok\\\\b"]
            replace: maybe
            lables: x
          empty:
            label: Empty
          listy: [x]
        """,
    )
    assert problems(path) == [
        f"{path}:{line}"
        for line in [
            "1: version: the int 2 is not a supported lexicon version; write `version: 1`",
            "2: mode: the string 'merge' is not one of extend, replace",
            "3: colour: unknown key; the keys of a lexicon file are version, mode, categories",
            "5: categories.Bad-Name: 'Bad-Name' is not a category name; use lowercase letters, digits and '_' (e.g. "
            "religious_injection)",
            "8: categories.sexism.terms[0]: an empty term matches nothing; remove it",
            "8: categories.sexism.terms[1]: 'a*b': '*' may only end a term (a prefix wildcard like 'immigra*')",
            "8: categories.sexism.terms[2]: expected a string, got the int 12; put it in quotes",
            "8: categories.sexism.terms[3]: '...' has no letter or digit; a term must contain a word",
            "9: categories.sexism.patterns[0]: '(unclosed' is not a valid regular expression (missing ), unterminated "
            "subpattern at position 0); fix it or use `terms` for plain words",
            "9: categories.sexism.patterns[1]: 'a*' matches the empty string, so it would flag every text; make it "
            "require a word",
            "10: categories.sexism.replace: expected true or false, got the string 'maybe'",
            "11: categories.sexism.lables: unknown key; the keys of a category are label, description, replace, terms, "
            "patterns",
            "12: categories.empty: a new or replaced category needs at least one term or pattern",
            "14: categories.listy: expected a mapping with `terms` and/or `patterns`, got a list",
        ]
    ]


def test_structural_problems(tmp_path: Path):
    no_categories = write(tmp_path, "a.yaml", "version: 1\n")
    assert problems(no_categories) == [
        f"{no_categories}:1: categories: required key missing; add `categories:` "
        "mapping each category name to its `terms` and `patterns`"
    ]
    syntax = write(tmp_path, "b.yaml", "categories:\n  a: [x\n")
    assert problems(syntax)[0].startswith(f"{syntax}:3: (top level): YAML syntax error")
    duplicate = write(tmp_path, "c.yaml", "categories:\n  a: {terms: [x]}\n  a: {terms: [y]}\n")
    assert problems(duplicate) == [f"{duplicate}:3: categories.a: duplicate key (first written at line 2); keep one"]
    terms = write(tmp_path, "d.yaml", "categories:\n  a:\n    terms: x\n")
    assert problems(terms) == [
        f"{terms}:3: categories.a.terms: expected a list of strings, got the string 'x'; "
        "write `[a, b]` or one `- item` per line"
    ]


def test_problems_of_several_files_come_together(tmp_path: Path):
    one = write(tmp_path, "one.yaml", "categories:\n  a: {terms: ['']}\n")
    two = write(tmp_path, "two.yaml", "categories:\n  b: {patterns: ['(']}\n")
    found = problems(one, two)
    assert len(found) == 2 and found[0].startswith(f"{one}:2:") and found[1].startswith(f"{two}:2:")


def test_missing_file_and_empty_result(tmp_path: Path):
    with pytest.raises(UserError, match=r"lexicon file .*nope\.yaml does not exist"):
        load_lexicon([tmp_path / "nope.yaml"])
    with pytest.raises(UserError, match="has no category"):
        load_lexicon([write(tmp_path, "e.yaml", "mode: replace\ncategories: {}\n")])
