"""Progress bars with ETA on stderr (tqdm), silent when stderr is not a terminal unless forced."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress_bar(
    items: Iterable[T], desc: str | None = None, unit: str = "it", total: int | None = None
) -> Iterable[T]:
    """Wrap `items` in a tqdm bar when `desc` is given; FLEXTAPE_PROGRESS=0/1 forces it off/on."""
    enabled = desc is not None and bars_shown()
    return tqdm(items, desc=desc, unit=unit, total=total, disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def bars_shown() -> bool:
    """Whether bars are drawn on stderr: FLEXTAPE_PROGRESS=1, or stderr is a terminal and FLEXTAPE_PROGRESS is not
    0."""
    forced = os.environ.get("FLEXTAPE_PROGRESS")
    return forced == "1" or (forced != "0" and sys.stderr.isatty())
