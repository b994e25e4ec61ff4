"""A PNG of the leaderboard page as headless Chromium draws it (the top of the page: header, charts and the first
tables), for READMEs: `python -m flextape_bench.leaderboard.screenshot PAGE PNG [--width W] [--height H]`."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from flextape_bench.checksums import write_atomic
from flextape_bench.errors import UserError

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT = 120  # seconds


def find_browser() -> str:
    """The first of BROWSERS on PATH; a UserError naming them when there is none."""
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        raise UserError(f"no headless browser found (looked for {', '.join(BROWSERS)}); install chromium")
    return found


def screenshot(page: Path, png: Path, width: int = 1400, height: int = 2600, browser: str | None = None) -> Path:
    """Draw `page` (an HTML file) in a `width` x `height` window of headless Chromium and write it to `png`;
    returns `png`."""
    if not page.is_file():
        raise UserError(f"{page}: no such page; write it with `flextape-bench leaderboard` first")
    with tempfile.TemporaryDirectory(prefix="flextape-screenshot-") as tmp:
        shot = Path(tmp) / "page.png"
        command = [
            browser or find_browser(),
            "--headless=new",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            f"--window-size={width},{height}",
            f"--screenshot={shot}",
            page.resolve().as_uri(),
        ]
        if os.geteuid() == 0:  # Chromium refuses to run as root with its sandbox
            command.insert(1, "--no-sandbox")
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise UserError(f"{command[0]}: no screenshot of {page} within {TIMEOUT} s") from exc
        if done.returncode != 0 or not shot.is_file():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise UserError(f"{command[0]}: no screenshot of {page} (exit {done.returncode}: {last})")
        write_atomic(png, shot.read_bytes())
    return png


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flextape_bench.leaderboard.screenshot", description=__doc__)
    parser.add_argument("page", type=Path, help="the leaderboard's index.html")
    parser.add_argument("png", type=Path, help="the PNG to write")
    parser.add_argument("--width", type=int, default=1400, help="window width in pixels (default 1400)")
    parser.add_argument("--height", type=int, default=2600, help="window height in pixels (default 2600)")
    args = parser.parse_args(argv)
    try:
        print(f"written: {screenshot(args.page, args.png, args.width, args.height)}")
    except UserError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
