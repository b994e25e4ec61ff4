"""The HTML page: self-contained (it loads nothing; its only URLs are links), text from results escaped, filter data
that round-trips, a header on what is measured and what stands behind it, the gender charts before the tables, the
leaderboard one table per task with intervals, p-values and marks in its cells, a legend per table, model metadata
and links to the runs' config.json published beside the page."""

from __future__ import annotations

import base64
import json
import re
import statistics
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import pytest
from scipy import stats

from flextape_bench.leaderboard.page import MIN_CASES
from flextape_bench.leaderboard.write import write_leaderboard
from flextape_bench.tasks import TaskIndex

from .conftest import (
    COMMIT,
    FEMALE,
    MALE,
    PARAMETERS,
    WEIGHTS,
    WEIRD,
    group_seed,
    pair_task,
    percentile_interval,
    write_run,
)


class _Page(HTMLParser):
    """Tags with their attributes (entities decoded) in document order, and each table's header and cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.titles: dict[str, list[str]] = {}  # each table's header tooltips
        self.legends: list[list[str]] = []  # each legend's <dt> texts
        self._table: str | None = None
        self._text: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        self.elements.append((tag, attributes))
        if tag == "table":
            self._table = attributes["id"]
            self.tables[self._table], self.titles[self._table] = [], []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th", "dt"):
            self._text = []
            if tag == "th":
                self.titles[self._table].append(attributes.get("title", ""))
        elif tag == "dl":
            self.legends.append([])

    def handle_data(self, data):
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._text is not None and self._table:
            self.tables[self._table][-1].append("".join(self._text).strip())
            self._text = None
        elif tag == "dt" and self._text is not None:
            self.legends[-1].append("".join(self._text))
            self._text = None
        elif tag == "table":
            self._table = None


@pytest.fixture
def out(results, tmp_path) -> Path:
    write_leaderboard(results, tmp_path / "out")
    return tmp_path / "out"


@pytest.fixture
def page(out):
    text = (out / "index.html").read_text()
    parser = _Page()
    parser.feed(text)
    return text, parser


def _rows(parser: _Page, table: str) -> dict[tuple[str, str], dict[str, str]]:
    """The table's rows as {(model, editor): {column: cell text}}."""
    header, *rows = parser.tables[table]
    return {(row[0], row[1]): dict(zip(header, row)) for row in rows}


def test_text_from_results_is_escaped(page):
    text, parser = page
    assert "<b>x</b>" not in text and "org/&lt;b&gt;x&lt;/b&gt; &amp; &#39;y&#39;" in text
    options = [a["value"] for tag, a in parser.elements if tag == "option"]
    assert options == ["", "eff", "lf", "pair", "", "gemma3-270m", WEIRD]
    filters = [json.loads(a["data-filter"]) for tag, a in parser.elements if "data-filter" in a]
    assert {"model": [WEIRD], "task": ["lf"]} in filters and {"model": [WEIRD], "task": ["pair"]} in filters


def test_self_contained_its_only_urls_links(page, out):
    text, parser = page
    loaded = [a[key] for tag, a in parser.elements if tag != "a" for key in ("src", "href") if key in a]
    assert loaded and all(url.startswith("data:") for url in loaded)
    assert "<script src" not in text and "@import" not in text and "url(" not in text
    images = [a["src"] for tag, a in parser.elements if tag == "img"]
    assert len(images) == 3  # the gender chart of "pair", then the two group-shift plots
    assert all(base64.b64decode(src.split(",", 1)[1]).lstrip().startswith(b"<?xml") for src in images)
    links = [a["href"] for tag, a in parser.elements if tag == "a"]
    external = [link for link in links if urlparse(link).scheme]
    assert sorted(urlparse(link).netloc for link in external) == ["aclanthology.org", "github.com"]
    local = [link for link in links if not urlparse(link).scheme]
    assert local and all((out / link).is_file() for link in local)  # published beside the page


def test_every_table_with_its_rows(page):
    text, parser = page
    assert list(parser.tables) == [
        "table-overview",
        "table-leaderboard-eff",
        "table-leaderboard-lf",
        "table-leaderboard-pair",
        "table-models",
        "table-runs",
        "table-group_shifts",
        "table-pairwise",
        "table-cross_property",
        "table-flaws",
    ]
    assert "1 unfinished run (no intact summary.json) skipped" in text
    ft = _rows(parser, "table-leaderboard-pair")["gemma3-270m", "ft"]
    assert (ft["run"], ft["cases"], ft["efficacy pre"], ft["efficacy post"]) == ("run_002", "4", "0.2500", "1.0000")
    assert "task" not in ft  # the table's caption
    assert set(parser.tables["table-leaderboard-eff"][0]) == {"model", "editor", "run", "cases", "efficacy pre"} | {
        "efficacy post",
        "config",
    }  # a task's table without the columns empty for it


def test_header_says_what_is_measured_and_what_stands_behind_it(page):
    text, _ = page
    about = text.split('<header id="about">', 1)[1].split("</header>", 1)[0]
    assert "Seesaw-CF" in about and "gender, race and geographic origin" in about
    assert "A positive shift means the edit spread" in about
    # run_002 recorded its commit, the others were made by 0.0.9 before commits were recorded
    made = (
        f"Runs made with flextape-bench 0.0.9 (commit not recorded), 0.1.0 (commit {COMMIT[:12]}-dirty), started "
        "2025-01-01 to 2025-01-02; page made with flextape-bench 0.1.0."
    )
    assert made in " ".join(about.split())


def test_header_links_the_paper_and_the_data_the_task_specs_download(page):
    text, _ = page
    about = text.split('<header id="about">', 1)[1].split("</header>", 1)[0]
    paper, data = re.findall(r'<a href="([^"]+)">', about)
    assert paper == "https://aclanthology.org/2024.emnlp-main.494/"
    # the packaged specs download from raw.githubusercontent.com/<owner>/<repo>/<commit>/data/<file>
    owner, repo, commit, folder = urlparse(TaskIndex().spec("seesaw_cf_P19_P101").dataset.url).path.split("/")[1:5]
    assert data == f"https://github.com/{owner}/{repo}/tree/{commit}/{folder}"


def test_cases_per_task_with_a_warning_below_the_minimum(page, results, tmp_path):
    text, _ = page
    cases = text.split('<p id="cases">', 1)[1].split("</p>", 1)[0]
    # every "pair" task has 4 cases, "eff" 2 efficacy cases, "lf" 2 cases of two texts each: all below 30
    assert re.sub(r"<[^>]+>", "", " ".join(cases.split())).endswith(
        "eff: 2 (below 30); lf: 2 (below 30); pair: 4 (below 30)."
    )
    warning = text.split('<p class="warning" id="few-cases">', 1)[1].split("</p>", 1)[0]
    assert MIN_CASES == 30 and "eff, lf, pair have fewer than 30 cases" in warning
    assert "too narrow" in warning and "few degrees of freedom" in warning  # why


def test_no_warning_at_the_minimum(tmp_path):
    task = pair_task([(False, True)] * 30, {"female": [0.1] * 30}, [(True, True)] * 30)
    write_run(tmp_path / "r", "m", "ft", 1, {"big": task})
    write_leaderboard(tmp_path / "r", tmp_path / "out")
    text = (tmp_path / "out" / "index.html").read_text()
    assert "<span>big: 30</span>." in text and "few-cases" not in text and "(below" not in text


def test_header_names_the_cases_every_row_shares_and_warns_where_rows_differ(tmp_path):
    task = pair_task([(False, True)] * 30, {"female": [0.1] * 30}, [(True, True)] * 30)
    shared = [*range(100, 128), 140, 142]
    write_run(tmp_path / "r", "m", "ft", 1, {"big": task, "other": task}, case_ids=shared)
    write_run(tmp_path / "r", "m", "none", 1, {"big": task}, case_ids=shared)
    write_run(tmp_path / "r", "m", "rome", 1, {"other": task}, case_ids=range(30))
    write_leaderboard(tmp_path / "r", tmp_path / "out")
    text = (tmp_path / "out" / "index.html").read_text()
    assert "<span>big: 30, case ids 100-127, 140, 142 in every row</span>;" in text
    assert "<span>other: 30</span>." in text  # ft's and rome's cases differ: no ids, a warning
    warning = text.split('<p class="warning" id="mixed-cases">', 1)[1].split("</p>", 1)[0]
    assert "the rows of other come from different cases" in warning


def test_gender_charts_come_right_after_the_header_before_the_tables(page):
    _, parser = page
    order = [tag for tag, a in parser.elements if tag in ("header", "figure", "table")]
    assert order[:3] == ["header", "figure", "table"]
    chart = next(a for tag, a in parser.elements if tag == "figure")
    assert json.loads(chart["data-filter"]) == {"model": ["gemma3-270m"], "task": ["pair"]}
    svg = base64.b64decode(next(a["src"] for tag, a in parser.elements if tag == "img").split(",", 1)[1]).decode()
    assert all(f"<!-- {label} -->" in svg for label in ("ft", "none", "women (female probes)", "men (male probes)"))


def test_shifts_with_intervals_and_the_gap_with_its_test(page):
    _, parser = page
    ft = _rows(parser, "table-leaderboard-pair")["gemma3-270m", "ft"]
    low, high = percentile_interval(FEMALE, group_seed("female"))
    assert ft["gender female"] == f"0.3000 [{low:.4f}, {high:.4f}]"
    female_p = 2 * stats.ttest_1samp(FEMALE, 0).pvalue  # Holm over female and male
    assert ft["gender female p (Holm)"] == f"{female_p:.3g} ***"
    differences = [f - m for f, m in zip(FEMALE, MALE)]
    low, high = percentile_interval(differences, group_seed("female - male"))
    assert ft["female - male gap"] == f"0.3000 [{low:.4f}, {high:.4f}]"
    assert ft["female - male gap p (Holm)"] == f"{stats.ttest_rel(FEMALE, MALE).pvalue:.3g} *"
    assert ft["female - male gap test"] == "paired"
    assert ft["female - male gap d"] == f"{statistics.mean(differences) / statistics.stdev(differences):.4f}"
    assert not any(column.endswith((" sig", "95% CI low", "95% CI high")) for column in ft)  # inside the cells


def test_every_column_shown_has_a_legend_and_a_tooltip(page):
    _, parser = page
    headers = {name: rows[0] for name, rows in parser.tables.items()}
    legend_of = {column for entry in parser.legends for names in entry for column in names.split(", ")}
    assert all(title for titles in parser.titles.values() for title in titles)
    assert {c for columns in headers.values() for c in columns} <= legend_of
    # one legend per section: the leaderboard's tables share theirs
    assert len(parser.legends) == len(parser.tables) - 2


def test_model_metadata(page):
    _, parser = page
    models = _rows(parser, "table-models")
    assert models["gemma3-270m", str(PARAMETERS)] == {
        "model": "gemma3-270m",
        "parameters": str(PARAMETERS),
        "weights blake2b": WEIGHTS["gemma3-270m"],
        "dtype": "torch.float32",
        "revision": "",
    }
    assert (WEIRD, "") in models  # made before parameter counts were recorded: blank


def test_rows_link_to_their_runs_config(page, results, out):
    text, _ = page
    links = re.findall(r'<a href="(runs/[^"]+)">config.json</a>', text)
    assert "runs/gemma3-270m/ft/run_002/config.json" in links and len(set(links)) == 4  # the four runs kept
    for link in set(links):
        assert (out / link).read_bytes() == (results / link.removeprefix("runs/")).read_bytes()
