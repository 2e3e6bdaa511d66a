"""A real HTTP receiver of webhooks for tests, and the verification recipe of the docs."""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.test import override_settings

DOCS = Path(__file__).resolve().parents[1] / "docs" / "integration.md"


@dataclass
class Received:
    path: str
    headers: Message
    body: bytes
    at: float  # time.monotonic() on arrival


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    # The HTTP status of each answer in turn; 200 once they are used up.
    script: list[int] = field(default_factory=list)


@contextmanager
def webhook_receiver() -> Iterator[Receiver]:
    """A local HTTP server that logs every POST and answers as its script says.

    It listens on 127.0.0.1, a private address: while it runs, webhooks may go there
    (`WEBHOOK_ALLOW_PRIVATE`, as on a developer's machine)."""
    receiver = Receiver(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                receiver.received.append(
                    Received(path=self.path, headers=self.headers, body=body, at=time.monotonic())
                )
                status = receiver.script.pop(0) if receiver.script else 200
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", f"{receiver.url}moved")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_port}/hooks/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with override_settings(WEBHOOK_ALLOW_PRIVATE=True):
            yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def documented_verifier() -> Callable[[str, bytes, str], bool]:
    """`verify_rp_signature` exactly as docs/integration.md gives it to merchants."""
    text = DOCS.read_text()
    after_marker = text.split("<!-- recipe: verify-signature", 1)[1]
    block = after_marker.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(block, str(DOCS), "exec"), namespace)
    return namespace["verify_rp_signature"]
