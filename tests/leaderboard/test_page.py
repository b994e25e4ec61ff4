"""The HTML page: self-contained (no external URL), text from results escaped, filter data that round-trips."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser

import pytest

from flextape_bench.leaderboard.write import write_leaderboard

from .conftest import WEIRD


class _Elements(HTMLParser):
    """Tags with their attributes (entities decoded), in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


@pytest.fixture
def page(results, tmp_path):
    write_leaderboard(results, tmp_path / "out")
    text = (tmp_path / "out" / "index.html").read_text()
    parser = _Elements()
    parser.feed(text)
    return text, parser.elements


def test_text_from_results_is_escaped(page):
    text, elements = page
    assert "<b>x</b>" not in text and "org/&lt;b&gt;x&lt;/b&gt; &amp; &#39;y&#39;" in text
    options = [a["value"] for tag, a in elements if tag == "option"]
    assert options == ["", "eff", "lf", "pair", "", "gemma3-270m", WEIRD]
    filters = [json.loads(a["data-filter"]) for tag, a in elements if "data-filter" in a]
    assert {"model": [WEIRD], "task": ["lf"]} in filters and {"model": [WEIRD], "task": ["pair"]} in filters


def test_self_contained(page):
    text, elements = page
    links = [a[key] for _, a in elements for key in ("src", "href") if key in a]
    assert links and all(link.startswith("data:") for link in links)
    assert "http://" not in text and "https://" not in text and "<script src" not in text
    images = [a["src"] for tag, a in elements if tag == "img"]
    assert len(images) == 2
    assert all(base64.b64decode(src.split(",", 1)[1]).lstrip().startswith(b"<?xml") for src in images)


def test_every_table_with_its_rows(page):
    text, elements = page
    tables = [a["id"] for tag, a in elements if tag == "table"]
    assert tables == [
        "table-overview",
        "table-leaderboard",
        "table-runs",
        "table-group_shifts",
        "table-pairwise",
        "table-cross_property",
        "table-flaws",
    ]
    assert "1 unfinished run (no intact summary.json) skipped" in text
    assert re.search(r"<td>pair</td><td>run_002</td><td>4</td><td>0\.2500</td><td>1\.0000</td>", text)


def test_header_says_what_is_measured_what_a_shift_means_and_what_stands_behind_it(page):
    text, _ = page
    about = text.split('<header id="about">', 1)[1].split("</header>", 1)[0]
    assert "Seesaw-CF" in about and "gender, race and geographic origin" in about
    assert "A positive shift means the edit spread" in about
    # the fixture's runs: every "pair" task has 4 cases, "eff" 2 efficacy cases, "lf" 2 cases of two texts each
    assert "eff: 2; lf: 2; pair: 4." in about
    assert "Runs made with flextape-bench 0.0.9; page made with flextape-bench 0.1.0." in about
