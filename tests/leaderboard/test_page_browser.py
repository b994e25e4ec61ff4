"""The page in headless Chromium (Debian's chromium and chromium-driver, through Selenium with the driver path given,
so Selenium Manager downloads nothing): no console errors, numeric column sort both ways with blanks last, the task
and model filters, the embedded figures drawn, and a screenshot.

Skipped when Chromium, its driver or selenium is missing, unless FLEXTAPE_REQUIRE_BROWSER=1 (CI), then it fails."""

from __future__ import annotations

import pytest

from flextape_bench.leaderboard.write import write_leaderboard

from . import conftest
from .conftest import CHROMEDRIVER, CHROMIUM, require_browser


def test_missing_browser_skips_unless_required(monkeypatch, tmp_path):
    monkeypatch.setattr(conftest, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("FLEXTAPE_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-chromium"):
        require_browser()
    monkeypatch.setenv("FLEXTAPE_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match=r"FLEXTAPE_REQUIRE_BROWSER=1 but .*no-chromium"):
        require_browser()


@pytest.fixture
def browser():
    require_browser()
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

    board = "table-leaderboard-pair"
    shifts = ["0.1500 [0.1175, 0.1825]", "0.0000 [0.0000, 0.0000]", "0.1000 [0.1000, 0.1000]"]
    assert _column(browser, board, "probe shift") == shifts  # ft, none, rome
    _click(browser, board, "probe shift")  # by the number, not the interval's text
    assert _column(browser, board, "probe shift") == [shifts[1], shifts[2], shifts[0]]
    _click(browser, board, "probe shift")
    assert _column(browser, board, "probe shift") == [shifts[0], shifts[2], shifts[1]]
    _click(browser, board, "gender female p (Holm)")  # blanks last
    assert [cell.split(" ")[-1] for cell in _column(browser, board, "gender female p (Holm)")] == ["***", "", ""]
    _click(browser, board, "gender female")
    assert [cell.split(" ")[0] for cell in _column(browser, board, "gender female")] == ["0.0000", "0.3000", ""]
    _click(browser, board, "model")  # text
    assert _column(browser, board, "model")[-1] == "org/<b>x</b> & 'y'"

    Select(browser.find_element(By.ID, "filter-task")).select_by_value("pair")
    assert len(_column(browser, board, "model")) == 3 and _column(browser, "table-leaderboard-eff", "model") == []
    assert set(_column(browser, "table-group_shifts", "task")) == {"pair"}
    Select(browser.find_element(By.ID, "filter-model")).select_by_value("gemma3-270m")
    assert sorted(_column(browser, board, "editor")) == ["ft", "none"]
    figures = [f.text for f in browser.find_elements(By.TAG_NAME, "figure") if f.is_displayed()]
    assert figures == ["pair: women's and men's probe shifts per model and editor", "gemma3-270m: pair, gender_shift"]
    Select(browser.find_element(By.ID, "filter-task")).select_by_value("")
    Select(browser.find_element(By.ID, "filter-model")).select_by_value("")
    assert len(_column(browser, board, "model")) == 3 and len(_column(browser, "table-leaderboard-eff", "model")) == 1

    drawn = browser.execute_script("return Array.from(document.images, (img) => img.complete && img.naturalWidth > 0);")
    assert drawn == [True, True, True]  # the gender chart and the two group-shift plots
    links = browser.find_elements(By.CSS_SELECTOR, f"#{board} a")
    base = (tmp_path / "out").as_uri()
    assert {link.text for link in links} == {"config.json"}
    assert sorted(link.get_attribute("href").removeprefix(base) for link in links) == [
        "/runs/_b_x___b_y_/rome/run_001/config.json",
        "/runs/gemma3-270m/ft/run_002/config.json",
        "/runs/gemma3-270m/none/run_001/config.json",
    ]
    assert _severe(browser) == []
    screenshot = tmp_path / "leaderboard.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and screenshot.stat().st_size > 10000
