"""The page in headless Chromium (Debian's chromium and chromium-driver, through Selenium with the driver path given,
so Selenium Manager downloads nothing): no console errors, numeric column sort both ways with blanks last, the task
and model filters, the embedded figures drawn, and a screenshot.

Skipped when Chromium, its driver or selenium is missing, unless FLEXTAPE_REQUIRE_BROWSER=1 (CI), then it fails."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from flextape_bench.leaderboard.write import write_leaderboard

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def _missing() -> list[str]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    return missing + ([] if importlib.util.find_spec("selenium") else ["the selenium package"])


def _require_browser() -> None:
    """Skip when something is missing; fail instead under FLEXTAPE_REQUIRE_BROWSER=1."""
    missing = _missing()
    if missing:
        reason = f"headless browser test needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("FLEXTAPE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"FLEXTAPE_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


def test_missing_browser_skips_unless_required(monkeypatch, tmp_path):
    monkeypatch.setattr(__import__(__name__, fromlist=["_"]), "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("FLEXTAPE_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-chromium"):
        _require_browser()
    monkeypatch.setenv("FLEXTAPE_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match=r"FLEXTAPE_REQUIRE_BROWSER=1 but .*no-chromium"):
        _require_browser()


@pytest.fixture
def browser():
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def _column(driver, table: str, header: str) -> list[str]:
    """The visible rows' cells of one column."""
    from selenium.webdriver.common.by import By

    headers = [th.text.rstrip(" ▲▼") for th in driver.find_elements(By.CSS_SELECTOR, f"#{table} th")]
    index = headers.index(header)
    rows = driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
    return [row.find_elements(By.TAG_NAME, "td")[index].text for row in rows if row.is_displayed()]


def _click(driver, table: str, header: str) -> None:
    from selenium.webdriver.common.by import By

    next(th for th in driver.find_elements(By.CSS_SELECTOR, f"#{table} th") if th.text.startswith(header)).click()


def _severe(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_page_sorts_filters_and_renders(results, tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    write_leaderboard(results, tmp_path / "out")
    browser.get((tmp_path / "out" / "index.html").as_uri())
    assert browser.title == "flextape-bench leaderboard"
    assert _severe(browser) == []

    board = "table-leaderboard"
    assert _column(browser, board, "probe shift") == ["", "", "0.1500", "0.0000", "0.1000"]
    _click(browser, board, "probe shift")
    assert _column(browser, board, "probe shift") == ["0.0000", "0.1000", "0.1500", "", ""]
    _click(browser, board, "probe shift")
    assert _column(browser, board, "probe shift") == ["0.1500", "0.1000", "0.0000", "", ""]
    _click(browser, board, "gender female")
    assert _column(browser, board, "gender female") == ["0.0000", "0.3000", "", "", ""]
    assert _column(browser, board, "gender female sig") == ["", "***", "", "", ""]
    _click(browser, board, "model")  # text
    assert _column(browser, board, "model")[-2:] == ["org/<b>x</b> & 'y'"] * 2

    Select(browser.find_element(By.ID, "filter-task")).select_by_value("pair")
    assert _column(browser, board, "task") == ["pair"] * 3
    assert set(_column(browser, "table-group_shifts", "task")) == {"pair"}
    Select(browser.find_element(By.ID, "filter-model")).select_by_value("gemma3-270m")
    assert sorted(_column(browser, board, "editor")) == ["ft", "none"]
    figures = [f for f in browser.find_elements(By.TAG_NAME, "figure") if f.is_displayed()]
    assert [f.text for f in figures] == ["gemma3-270m: pair, gender_shift"]
    Select(browser.find_element(By.ID, "filter-task")).select_by_value("")
    Select(browser.find_element(By.ID, "filter-model")).select_by_value("")
    assert len(_column(browser, board, "task")) == 5

    drawn = browser.execute_script("return Array.from(document.images, (img) => img.complete && img.naturalWidth > 0);")
    assert drawn == [True, True]
    assert _severe(browser) == []
    screenshot = tmp_path / "leaderboard.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and screenshot.stat().st_size > 10000
