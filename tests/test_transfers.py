"""Bounded reads of HTTP replies: the size bound on the bytes that come and on what a gzip body decompresses to, the
time bound on the reply in all, and gzip streams that are cut off, corrupted or followed by other data."""

import gzip
import io
import os

import pytest

from flextape_bench import transfers
from flextape_bench.transfers import ReplyTooLarge, ReplyTooSlow, bounded_blocks, gunzipped


def test_a_reply_within_its_bound_is_read_whole_and_one_byte_more_is_refused():
    body = os.urandom(10_000)
    assert b"".join(bounded_blocks(io.BufferedReader(io.BytesIO(body)), 10_000, 60, block=999)) == body
    with pytest.raises(ReplyTooLarge) as caught:
        b"".join(bounded_blocks(io.BufferedReader(io.BytesIO(body)), 9_999, 60, block=999))
    assert caught.value.size == 10_000  # the size when the last block (1 byte short of a whole 999) came


class _SlowReply:
    """A response whose every read1 takes `step` seconds of a fake clock, 100 bytes each."""

    def __init__(self, clock: list[float], step: float):
        self.clock, self.step = clock, step

    def read1(self, size: int) -> bytes:
        self.clock[0] += self.step
        return b"x" * 100


def test_a_reply_is_stopped_at_its_time_bound_though_each_read_is_quick(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(transfers.time, "monotonic", lambda: clock[0])
    blocks = bounded_blocks(_SlowReply(clock, 0.5), max_bytes=1 << 30, seconds=10)
    with pytest.raises(ReplyTooSlow) as caught:
        for _ in blocks:
            pass
    # the 20th read ends at 10.0 s (not past the bound); the 21st ends at 10.5 s: refused, 2,100 bytes had come
    assert caught.value.size == 2_100
    assert clock[0] == 10.5


def test_gzip_blocks_decompress_to_the_body_in_any_split():
    body = os.urandom(3_000) + b"a" * 200_000
    packed = gzip.compress(body)
    blocks = [packed[i : i + 777] for i in range(0, len(packed), 777)]
    assert b"".join(gunzipped(blocks, len(body))) == body


def test_a_gzip_bomb_is_refused_one_byte_past_the_bound():
    """64 MiB of zeros compress to about 64 KB: decompression stops one byte past the bound, not at the end."""
    bomb = gzip.compress(bytes(64 << 20))
    assert len(bomb) < 100_000
    with pytest.raises(ReplyTooLarge) as caught:
        for _ in gunzipped([bomb], 1 << 20):
            pass
    assert caught.value.size == (1 << 20) + 1


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda packed: packed[:-20], "ended before its end marker"),
        (lambda packed: packed + b"more", "data after the end of the gzip stream"),
        (lambda packed: packed[:10] + bytes(len(packed) - 10), "not a valid gzip stream"),
    ],
)
def test_a_damaged_gzip_stream_is_a_bad_gzip_file(damage, message):
    packed = gzip.compress(os.urandom(5_000))
    with pytest.raises(gzip.BadGzipFile, match=message):
        b"".join(gunzipped([damage(packed)], 1 << 20))
