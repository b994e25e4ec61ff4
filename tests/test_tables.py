"""Summary tables: the cross_property and long_form tables next to the group tables."""

from flextape_bench.tables import cross_property_rows, flaw_rows, group_tables, long_form_rows, pairwise_rows

PROMPT = {
    "prompt": "{}'s field of work is",
    "n_cases": 4,
    "n_changed": 1,
    "change_rate": 0.25,
    "n_known": 2,
    "n_correct_pre": 1,
    "n_correct_post": 0,
    "accuracy_pre": 0.5,
    "accuracy_post": 0.0,
}
SUMMARY = {
    "tasks": {
        "pair": {
            "n_cases": 4,
            "cross_property": {
                "property": "P101",
                "n_cases": 4,
                "n_known": 2,
                "prompts": [
                    PROMPT,
                    {**PROMPT, "prompt": "{} is", "n_known": 0, "accuracy_pre": None, "accuracy_post": None},
                ],
            },
        },
        "eff": {"n_cases": 4, "efficacy": {"pre": 0.5, "post": 1.0, "n_cases": 4}},
    }
}


def test_cross_property_rows_per_task_and_prompt():
    rows = cross_property_rows(SUMMARY)
    assert rows == [
        {
            "task": "pair",
            "property": "P101",
            "prompt": "{}'s field of work is",
            "cases": 4,
            "top-1 changed": 0.25,
            "known": 2,
            "accuracy pre": 0.5,
            "accuracy post": 0.0,
        },
        {
            "task": "pair",
            "property": "P101",
            "prompt": "{} is",
            "cases": 4,
            "top-1 changed": 0.25,
            "known": 0,
            "accuracy pre": None,
            "accuracy post": None,
        },
    ]


def test_group_tables_end_with_the_cross_property_table():
    text = group_tables(SUMMARY)
    assert text.startswith("## cross_property\n\n| task")
    assert "| pair   | P101       | {}'s field of work is |" in text and text.count("| pair ") == 2
    assert group_tables({"tasks": {"eff": SUMMARY["tasks"]["eff"]}}) == ""


def _rates(pre, post):
    return {
        "pre": pre,
        "post": post,
        "change": post - pre,
        "introduced": max(post - pre, 0.0),
        "removed": max(pre - post, 0.0),
    }


def _long_form(n):
    part = {
        "n_texts": n,
        "reflected": _rates(0.0, 0.5),
        "mentions_true": _rates(0.5, 0.25),
        "any_flaw": _rates(0.25, 0.5),
        "fluency": {"pre": 4.0, "post": 3.5, "change": -0.5, "n": n},
        "flaws": {"sexism": _rates(0.0, 0.25), "racism": _rates(0.25, 0.25)},
    }
    return part


LONG_FORM = {
    "tasks": {
        "lf": {
            "n_cases": 2,
            "long_form": {
                "n_cases": 2,
                "categories": ["sexism", "racism"],
                **_long_form(4),
                "prompts": [{"prompt": "{} is", **_long_form(2)}, {"prompt": "{} was", **_long_form(2)}],
            },
            "long_form_settings": {
                "lexicon": {"categories": {"sexism": {"label": "Sexism"}, "racism": {"label": "Racism"}}}
            },
        }
    }
}


def test_long_form_rows_per_prompt_then_all():
    rows = long_form_rows(LONG_FORM)
    assert [(r["prompt"], r["texts"]) for r in rows] == [("{} is", 2), ("{} was", 2), ("(all)", 4)]
    assert rows[2] == {
        "task": "lf",
        "prompt": "(all)",
        "texts": 4,
        "reflected pre": 0.0,
        "reflected post": 0.5,
        "true mentioned pre": 0.5,
        "true mentioned post": 0.25,
        "fluency pre": 4.0,
        "fluency post": 3.5,
        "any flaw pre": 0.25,
        "any flaw post": 0.5,
    }


def test_flaw_rows_use_the_lexicon_labels():
    assert flaw_rows(LONG_FORM) == [
        {
            "task": "lf",
            "category": "Sexism",
            "texts": 4,
            "flagged pre": 0.0,
            "flagged post": 0.25,
            "change": 0.25,
            "introduced": 0.25,
            "removed": 0.0,
        },
        {
            "task": "lf",
            "category": "Racism",
            "texts": 4,
            "flagged pre": 0.25,
            "flagged post": 0.25,
            "change": 0.0,
            "introduced": 0.0,
            "removed": 0.0,
        },
    ]
    text = group_tables(LONG_FORM)
    assert text.startswith("## long_form\n\n| task") and "Flaw flags (keyword lexicon; a crude proxy)" in text


PAIR = {
    "a": "female",
    "b": "male",
    "test": "paired",
    "n_a": 3,
    "n_b": 3,
    "mean_a": 0.2,
    "mean_b": 0.0,
    "diff": 0.2,
    "se": 0.1155,
    "t": 1.7321,
    "df": 2.0,
    "p": 0.2254,
    "p_adj": 0.2254,
    "d": 1.0,
    "g": 0.56,
}


def test_pairwise_rows_name_the_test():
    old = {key: value for key, value in PAIR.items() if key != "test"}  # a summary written before `test` existed
    summary = {
        "tasks": {
            "new": {"gender_shift": {"pairwise": [PAIR]}},
            "old": {"gender_shift": {"pairwise": [old]}},
            "eff": {"efficacy": {"pre": 0.5, "post": 1.0}},
        }
    }
    rows = pairwise_rows(summary, "gender_shift")
    assert rows[0] == {
        "task": "new",
        "groups": "female - male",
        "test": "paired",
        "difference": 0.2,
        "95% CI low": None,  # not recorded before the interval was
        "95% CI high": None,
        "t": 1.7321,
        "df": 2.0,
        "p": 0.2254,
        "p (Holm)": 0.2254,
        "d": 1.0,
    }
    assert rows[1]["test"] == "welch" and len(rows) == 2
