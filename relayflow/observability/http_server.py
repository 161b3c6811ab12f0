"""A standard-library HTTP server answered from a background thread.

``relayflow asyncapi --serve`` (a local documentation page) is a blocking
``ThreadingHTTPServer``: ``serve_forever`` in the main thread for a command,
``serving()`` in a thread for tests. The codec server, which must hold up
against hostile clients, runs on asyncio instead (``relayflow.temporal.codec_server``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer

__all__ = ["BackgroundHTTPServer"]


class BackgroundHTTPServer:
    """Wraps a bound ``ThreadingHTTPServer``: its URL, serving and shutting down.

    Args:
        server: The bound server.
        name: Name of the thread ``serving`` starts.
        path: Appended to ``http://host:port`` to make ``url``.
    """

    def __init__(self, server: ThreadingHTTPServer, *, name: str, path: str = "") -> None:
        self._server = server
        self._name = name
        self._path = path

    @property
    def url(self) -> str:
        """Where it answers."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self._path}"

    def serve_forever(self) -> None:
        """Answer requests until ``shutdown`` (from another thread)."""
        self._server.serve_forever()

    def shutdown(self) -> None:
        """Stop ``serve_forever`` and close the socket.

        Call it from another thread than ``serve_forever``'s, or after that has
        returned; it waits for the loop, so never before it started.
        """
        self._server.shutdown()
        self._server.server_close()

    @contextmanager
    def serving(self) -> Iterator[str]:
        """Serve from a background thread while the block runs; yields ``url``."""
        thread = threading.Thread(target=self.serve_forever, name=self._name, daemon=True)
        thread.start()
        try:
            yield self.url
        finally:
            self.shutdown()
            thread.join()
