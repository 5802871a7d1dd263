"""Fault-injecting proxies for the chaos suite, on 127.0.0.1 only.

- `FaultyHttpProxy` stands in front of fake-gcs-server: it forwards each request, but answers a
  random share with a 503 (the request never reaches the server), stalls another share, then
  drops the connection without an answer (a timeout, cut short so the suite stays fast), and
  forwards a third share but drops the answer (the server acted; the client cannot know).
- `TcpProxy` stands in one link of a process's network (to storage, Pub/Sub or the ledger):
  `cut()` partitions it (open connections are reset, new ones are accepted and closed at once,
  as a dropped route looks) until `heal()`; a `Partition` cuts and heals several at once, as a
  machine falls off the network.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"
# Headers that belong to one hop of a connection, not to the request or the answer.
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


class FaultyHttpProxy:
    """A reverse proxy to `upstream()` (http://127.0.0.1:port) that fails a share of the
    requests."""

    def __init__(
        self,
        upstream: Callable[[], str],
        *,
        error_rate: float = 0.0,
        stall_rate: float = 0.0,
        stall_s: float = 2.0,
        lost_answer_rate: float = 0.0,
        lose_answer_when: Callable[[str, str, bytes], bool] | None = None,
        seed: int = 0,
    ) -> None:
        self.upstream = upstream
        """The server's address (http://127.0.0.1:port), asked per request: it may start later."""
        self.error_rate = error_rate
        self.stall_rate = stall_rate
        self.stall_s = stall_s
        self.lost_answer_rate = lost_answer_rate
        self.lose_answer_when = lose_answer_when
        """(method, path, body) -> whether to forward this request and drop its answer."""
        self.faults: Counter[str] = Counter()
        self.requests = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def __enter__(self) -> FaultyHttpProxy:
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _draw(self, method: str, path: str, body: bytes) -> str | None:
        with self._lock:
            self.requests += 1
            if self.lose_answer_when is not None and self.lose_answer_when(method, path, body):
                self.faults["gcs_lost_answer"] += 1
                return "gcs_lost_answer"
            roll = self._rng.random()
            fault = None
            for kind, rate in (
                ("gcs_503", self.error_rate),
                ("gcs_stall", self.stall_rate),
                ("gcs_lost_answer", self.lost_answer_rate),
            ):
                if roll < rate:
                    fault = kind
                    break
                roll -= rate
            if fault:
                self.faults[fault] += 1
            return fault

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        fault = self._draw(request.command, request.path, body)
        if fault == "gcs_503":
            payload = b'{"error": {"code": 503, "message": "injected by the chaos proxy"}}'
            request.send_response(503)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(payload)))
            request.end_headers()
            request.wfile.write(payload)
            return
        if fault == "gcs_stall":
            time.sleep(self.stall_s)
            request.close_connection = True
            request.connection.shutdown(socket.SHUT_RDWR)
            return
        parts = urlsplit(self.upstream())
        assert parts.hostname == LOOPBACK and parts.port, parts
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
            connection.request(request.command, request.path, body=body, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
        finally:
            connection.close()
        if fault == "gcs_lost_answer":
            request.close_connection = True
            request.connection.shutdown(socket.SHUT_RDWR)
            return
        request.send_response(answer.status, answer.reason)
        for key, value in answer.getheaders():
            if key.lower() not in _HOP and key.lower() != "content-length":
                request.send_header(key, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(data)


class TcpProxy:
    """Forwards TCP connections to `upstream()` (a port on loopback, asked per connection: the
    server may start later, or again) until cut."""

    def __init__(self, upstream: Callable[[], int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server((LOOPBACK, 0))
        self.partitions = 0
        self._cut = threading.Event()
        self._stop = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.listener.getsockname()[1]}"

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self.listener.close()
        self._drop_all()

    def cut(self) -> None:
        """Partition: reset every open connection, and refuse service to new ones."""
        self.partitions += 1
        self._cut.set()
        self._drop_all()

    def heal(self) -> None:
        self._cut.clear()

    def _drop_all(self) -> None:
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self._cut.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection((LOOPBACK, self.upstream()), timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._open |= {client, server}
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(1 << 16):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class Partition:
    """Links cut and healed together: one machine's network."""

    def __init__(self, *links: TcpProxy) -> None:
        self.links = links

    def cut(self) -> None:
        for link in self.links:
            link.cut()

    def heal(self) -> None:
        for link in self.links:
            link.heal()
