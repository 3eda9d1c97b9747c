"""What the test suite's stand-ins for Google (``certserver``, ``fcmserver``,
``identitytoolkit``) share: an HTTP server on a free 127.0.0.1 port, served by a daemon
thread, stopped cleanly."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class LocalServer:
    _server: ThreadingHTTPServer | None = field(default=None, repr=False, kw_only=True)
    _thread: threading.Thread | None = field(default=None, repr=False, kw_only=True)

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT``."""
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _serve(
        self,
        handler: type[BaseHTTPRequestHandler],
        name: str,
        server_class: type[ThreadingHTTPServer] = ThreadingHTTPServer,
    ) -> None:
        self._server = server_class(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},  # shutdown() waits up to one poll
            name=name,
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that does not print a line per request."""

    def log_message(self, format: str, *args: object) -> None:
        pass
