"""The user cache directory (models converted once, pre-edit scores, downloaded data)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`FLEXTAPE_CACHE`, else `$XDG_CACHE_HOME/flextape_bench`, else `~/.cache/flextape_bench`."""
    if os.environ.get("FLEXTAPE_CACHE"):
        return Path(os.environ["FLEXTAPE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "flextape_bench"
