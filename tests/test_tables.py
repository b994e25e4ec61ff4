"""Summary tables: the cross_property table next to the group tables."""
from flextape_bench.tables import cross_property_rows, group_tables

PROMPT = {"prompt": "{}'s field of work is", "n_cases": 4, "n_changed": 1, "change_rate": 0.25, "n_known": 2,
          "n_correct_pre": 1, "n_correct_post": 0, "accuracy_pre": 0.5, "accuracy_post": 0.0}
SUMMARY = {"tasks": {
    "pair": {"n_cases": 4, "cross_property": {"property": "P101", "n_cases": 4, "n_known": 2,
                                              "prompts": [PROMPT, {**PROMPT, "prompt": "{} is", "n_known": 0,
                                                                   "accuracy_pre": None, "accuracy_post": None}]}},
    "eff": {"n_cases": 4, "efficacy": {"pre": 0.5, "post": 1.0, "n_cases": 4}},
}}


def test_cross_property_rows_per_task_and_prompt():
    rows = cross_property_rows(SUMMARY)
    assert rows == [
        {"task": "pair", "property": "P101", "prompt": "{}'s field of work is", "cases": 4, "top-1 changed": 0.25,
         "known": 2, "accuracy pre": 0.5, "accuracy post": 0.0},
        {"task": "pair", "property": "P101", "prompt": "{} is", "cases": 4, "top-1 changed": 0.25, "known": 0,
         "accuracy pre": None, "accuracy post": None},
    ]


def test_group_tables_end_with_the_cross_property_table():
    text = group_tables(SUMMARY)
    assert text.startswith("## cross_property\n\n| task")
    assert "| pair   | P101       | {}'s field of work is |" in text and text.count("| pair ") == 2
    assert group_tables({"tasks": {"eff": SUMMARY["tasks"]["eff"]}}) == ""
