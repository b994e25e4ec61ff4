"""A local HTTP endpoint that drips: it answers any GET or POST with 200 bytes, one every 0.5 s (100 s in all), so
each read comes well within a 1 s timeout but the reply as a whole takes far longer."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

DRIPPED_BYTES = 200


class _Drip(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))  # a POST's body, read before replying
        self.send_response(200)
        self.send_header("Content-Length", str(DRIPPED_BYTES))
        self.end_headers()
        for _ in range(DRIPPED_BYTES):
            try:
                self.wfile.write(b" ")
                self.wfile.flush()
            except OSError:  # the client hung up
                return
            time.sleep(0.5)

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def dripping_server() -> Iterator[str]:
    """The base URL (`http://127.0.0.1:PORT`) of a dripping endpoint, shut down on exit."""
    httpd = HTTPServer(("127.0.0.1", 0), _Drip)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
