"""The page's screenshot in headless Chromium: a PNG of the asked size with the page drawn on it, and one-line errors
for a missing page, a missing browser and a browser that fails. Skipped without Chromium, unless
FLEXTAPE_REQUIRE_BROWSER=1 (CI)."""

from __future__ import annotations

import pytest
from PIL import Image

from flextape_bench.errors import UserError
from flextape_bench.leaderboard import screenshot as module
from flextape_bench.leaderboard.screenshot import main, screenshot
from flextape_bench.leaderboard.write import write_leaderboard

from .conftest import CHROMIUM, require_browser


@pytest.fixture
def page(results, tmp_path):
    write_leaderboard(results, tmp_path / "out")
    return tmp_path / "out" / "index.html"


def test_screenshot_draws_the_page(page, tmp_path):
    require_browser(driver=False)
    png = screenshot(page, tmp_path / "shot" / "index.png", width=900, height=1200, browser=str(CHROMIUM))
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size == (900, 1200)
        pixels = image.convert("L")
        # the page is white with dark text (the title at its top left) and the orange and blue chart dots
        assert pixels.getextrema() == (pytest.approx(0, abs=60), 255)
        assert pixels.crop((0, 0, 450, 60)).getextrema()[0] < 100
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20)) > 50


def test_command_finds_the_browser_on_the_path(page, tmp_path, capsys):
    require_browser(driver=False)
    png = tmp_path / "index.png"
    assert main([str(page), str(png), "--width", "600", "--height", "400"]) == 0
    assert capsys.readouterr().out == f"written: {png}\n"
    with Image.open(png) as image:
        assert image.size == (600, 400)


def test_one_line_errors(page, tmp_path, monkeypatch, capsys):
    with pytest.raises(UserError, match=r"no-page.html: no such page; write it with `flextape-bench leaderboard`"):
        screenshot(tmp_path / "no-page.html", tmp_path / "x.png")
    with pytest.raises(UserError, match=r"^/bin/false: no screenshot of .*index.html \(exit 1: no output\)$"):
        screenshot(page, tmp_path / "x.png", browser="/bin/false")
    monkeypatch.setattr(module, "BROWSERS", ("no-such-browser",))
    assert main([str(page), str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.endswith("error: no headless browser found (looked for no-such-browser); install chromium\n")
    assert err.count("\n") == 1 and not (tmp_path / "x.png").exists()
