"""A tiny HTTP server on 127.0.0.1 for fetch tests and benchmarks: Range support and configurable faults."""

from __future__ import annotations

import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Faults:
    fail_first: int = 0  # answer the first N requests with `fail_status`
    fail_status: int = 503
    drop_after: int | None = None  # close the connection after this many body bytes ...
    drop_times: int = 1  # ... on this many (successful-status) requests
    ignore_range: bool = False  # answer 200 with the whole file even when asked for a range
    chunk_delay: float = 0.0  # seconds to sleep after each 64 KiB (makes a download take a while)
    no_length: bool = False  # omit Content-Length (the body ends when the connection closes)
    chunked: bool = False  # a 200 answer in HTTP/1.1 chunked encoding (a cut body lacks the final 0-size chunk)
    gate: threading.Event | None = None  # hold the body until the test sets this event
    stall_at: int | None = None  # at this file offset stop sending and keep the connection open (silent) ...
    trickle_every: float | None = None  # ... or, with this set, send one byte every this many seconds from there
    hold: float = 600.0  # how long a stalled or trickling answer lasts at most (the server's closing ends it too)


@dataclass
class Served:
    data: bytes | Path
    faults: Faults = field(default_factory=Faults)
    requests: int = 0
    drops: int = 0
    stalls: list[float] = field(default_factory=list)  # time.monotonic() when each answer began to stall


@dataclass(frozen=True)
class LogEntry:
    path: str
    range: str | None
    status: int
    time: float = field(default_factory=time.monotonic)  # when the request arrived


class LoopbackServer:
    def __init__(self) -> None:
        self.files: dict[str, Served] = {}
        self.log: list[LogEntry] = []
        self._lock = threading.Lock()
        self.closing = threading.Event()  # set on exit: stalled and trickling answers end
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                server._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self) -> "LoopbackServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def add(self, name: str, data: bytes | Path, **faults) -> str:
        self.files[name] = Served(data, Faults(**faults))
        return self.url(name)

    def url(self, name: str) -> str:
        return f"{self.base}/{urllib.parse.quote(name)}"

    def requests_for(self, name: str) -> list[LogEntry]:
        return [e for e in self.log if e.path == name]

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        name = urllib.parse.unquote(h.path.lstrip("/").split("?")[0])
        served = self.files.get(name)
        rng = h.headers.get("Range")
        with self._lock:
            if served is not None:
                served.requests += 1
                n = served.requests
        if served is None:
            self.log.append(LogEntry(name, rng, 404))
            h.send_error(404)
            return
        faults = served.faults
        if n <= faults.fail_first:
            self.log.append(LogEntry(name, rng, faults.fail_status))
            h.send_error(faults.fail_status)
            return
        data = served.data
        total = data.stat().st_size if isinstance(data, Path) else len(data)
        start, end = 0, total - 1
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
        status = 200
        if m and not faults.ignore_range:
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else total - 1
            if start >= total:  # as real servers do, say the size (RFC 9110 section 15.5.17)
                self.log.append(LogEntry(name, rng, 416))
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{total}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            status = 206
        self.log.append(LogEntry(name, rng, status))
        if faults.chunked and status == 200:
            self._send_chunked(h, data if isinstance(data, bytes) else data.read_bytes(), served)
            return
        h.send_response(status)
        if not faults.no_length:
            h.send_header("Content-Length", str(end - start + 1))
        h.send_header("Accept-Ranges", "bytes")
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{end}/{total}")
        h.end_headers()
        if faults.gate is not None:
            h.wfile.flush()
            faults.gate.wait(timeout=60)
        limit = end - start + 1
        if faults.drop_after is not None and served.drops < faults.drop_times:
            served.drops += 1
            limit = min(limit, max(0, faults.drop_after - start))
            self._send(h, data, start, limit, faults.chunk_delay)
            h.wfile.flush()
            h.connection.shutdown(socket.SHUT_RDWR)  # the connection drops mid-body
            h.close_connection = True
            return
        if faults.stall_at is not None and faults.stall_at < start + limit:
            before = max(0, faults.stall_at - start)
            self._send(h, data, start, before, faults.chunk_delay)
            self._stall(h, served, data, start + before, limit - before)
            return
        self._send(h, data, start, limit, faults.chunk_delay)

    def _stall(self, h: BaseHTTPRequestHandler, served: Served, data: bytes | Path, start: int, count: int) -> None:
        """Go silent (or trickle one byte at a time) for at most `hold` seconds, or until the server closes."""
        faults = served.faults
        try:
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return
        served.stalls.append(time.monotonic())
        ends = time.monotonic() + faults.hold
        if faults.trickle_every is None:
            self.closing.wait(timeout=faults.hold)
        else:
            body = data.read_bytes() if isinstance(data, Path) else data
            sent = 0
            while sent < count and time.monotonic() < ends and not self.closing.wait(faults.trickle_every):
                try:
                    h.wfile.write(body[start + sent:start + sent + 1])
                    h.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client gave up
                sent += 1
        h.close_connection = True

    @staticmethod
    def _send_chunked(h: BaseHTTPRequestHandler, body: bytes, served: Served) -> None:
        h.protocol_version = "HTTP/1.1"  # chunked encoding exists from 1.1 on
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("Connection", "close")
        h.end_headers()
        faults, cut = served.faults, len(body)
        if faults.drop_after is not None and served.drops < faults.drop_times:
            served.drops += 1
            cut = faults.drop_after
        step = 1 << 16
        try:
            for pos in range(0, min(cut, len(body)), step):
                piece = body[pos:min(pos + step, cut)]
                h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            if cut >= len(body):
                h.wfile.write(b"0\r\n\r\n")  # the terminator that proves the end
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        h.close_connection = True

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, data: bytes | Path, start: int, count: int, delay: float) -> None:
        try:
            if isinstance(data, Path):  # large files (benchmarks): zero-copy
                with data.open("rb") as fh:
                    sent = 0
                    while sent < count:
                        n = h.connection.sendfile(fh, start + sent, count - sent)
                        if not n:
                            break
                        sent += n
                return
            step = 1 << 16
            for pos in range(start, start + count, step):
                h.wfile.write(data[pos:min(pos + step, start + count)])
                if delay:
                    time.sleep(delay)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away; nothing to do


def sized(n: int, seed: int = 0) -> bytes:
    """Deterministic test bytes."""
    import random

    return random.Random(seed).randbytes(n)

