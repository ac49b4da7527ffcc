"""A real HTTP endpoint on 127.0.0.1 for tests: it records every POST (path and JSON body) and lets a test wait for
them without sleeping. Used as the json:// alert target and as the OpenLineage backend."""
from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Webhook:
    def __init__(self) -> None:
        self.posts: list[tuple[str, Any]] = []
        self.cond = threading.Condition()
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with hook.cond:
                    hook.posts.append((self.path, json.loads(body or b"null")))
                    hook.cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, scheme: str = "http", path: str = "") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def received(self, path: str | None = None) -> list[Any]:
        with self.cond:
            return [body for p, body in self.posts if path is None or p.split("?")[0] == path]

    def wait(self, count: int, path: str | None = None, timeout: float = 30.0) -> list[Any]:
        """The bodies posted to `path` once there are at least `count` of them (AssertionError after `timeout`)."""
        with self.cond:
            if not self.cond.wait_for(lambda: len([p for p, _ in self.posts if path is None or p.split("?")[0] == path]) >= count,
                                      timeout):
                raise AssertionError(f"timed out waiting for {count} posts to {path or 'any path'}; got {self.posts}")
        return self.received(path)


@contextmanager
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    hook.thread.start()
    try:
        yield hook
    finally:
        hook.server.shutdown()
        hook.server.server_close()


def closed_port() -> int:
    """A local port nothing listens on (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
