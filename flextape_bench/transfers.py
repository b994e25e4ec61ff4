"""HTTP replies read as they arrive, within a size and a time bound in all (a socket's timeout bounds each read
only), so that no endpoint can fill the memory or hold a run: the judge's replies, data downloads and Wikidata's
answers. Each caller turns the two exceptions into its own one-line error."""

from __future__ import annotations

import gzip
import time
import zlib
from collections.abc import Iterable, Iterator
from typing import Any


class ReplyTooLarge(Exception):
    """The reply passed its size bound; `size`: the bytes that had come (or been decompressed)."""

    def __init__(self, size: int):
        super().__init__(size)
        self.size = size


class ReplyTooSlow(Exception):
    """The reply took longer than its time bound; `size`: the bytes that had come."""

    def __init__(self, size: int):
        super().__init__(size)
        self.size = size


def bounded_blocks(response: Any, max_bytes: int, seconds: float, block: int = 1 << 16) -> Iterator[bytes]:
    """The body of `response` (an http.client response) block by block as the bytes arrive (`read1`); ReplyTooLarge
    past `max_bytes` and ReplyTooSlow past `seconds` from the first read, each checked before its block is given."""
    deadline = time.monotonic() + seconds
    size = 0
    while chunk := response.read1(block):
        size += len(chunk)
        if size > max_bytes:
            raise ReplyTooLarge(size)
        if time.monotonic() > deadline:
            raise ReplyTooSlow(size)
        yield chunk


def gunzipped(blocks: Iterable[bytes], max_bytes: int) -> Iterator[bytes]:
    """The decompressed bytes of one gzip stream given in `blocks`, never more than `max_bytes` in all (ReplyTooLarge:
    a small body can decompress to gigabytes). A corrupt, cut-off or trailing-data stream is gzip.BadGzipFile."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # 16: gzip header and trailer
    size = 0
    try:
        for chunk in blocks:
            while chunk:
                out = inflater.decompress(chunk, max_bytes + 1 - size)  # at most one byte past the bound
                size += len(out)
                if size > max_bytes:
                    raise ReplyTooLarge(size)
                yield out
                chunk = inflater.unconsumed_tail
    except zlib.error as exc:
        raise gzip.BadGzipFile(f"not a valid gzip stream ({exc})") from None
    if not inflater.eof:
        raise gzip.BadGzipFile("the gzip stream ended before its end marker")
    if inflater.unused_data:
        raise gzip.BadGzipFile("data after the end of the gzip stream")
