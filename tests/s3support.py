"""A real S3 endpoint for tests and benchmarks: moto's server on loopback, and a
small fault-injecting HTTP proxy that can sit in front of it.

The proxy forwards every request unchanged (so SigV4 signatures stay valid) and,
per a rule function, answers 503 SlowDown, cuts the connection mid-body (RST),
sends a short body (FIN before Content-Length is reached) or adds latency.
"""
from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

CREDS = {"AWS_ACCESS_KEY_ID": "testing-key-id", "AWS_SECRET_ACCESS_KEY": "testing-secret-value",
         "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, tries: int = 100) -> bool:
    """True once something accepts connections on 127.0.0.1:``port`` (50 ms between tries)."""
    for _ in range(tries):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def s3_client(url: str):  # noqa: ANN201
    """A boto3 client for the test server with the test credentials."""
    import boto3
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=CREDS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=CREDS["AWS_SECRET_ACCESS_KEY"])


class MotoServer:
    """moto's S3 server in this process, on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        import logging

        from moto.server import ThreadedMotoServer
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "MotoServer":
        self._server.start()
        wait_for_port(self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def client(self):  # noqa: ANN201
        return s3_client(self.url)


# A rule sees (method, path, n) where n counts requests for that path (1 = first) and
# returns None (pass through), "slowdown", "reset", "truncate" or "error500".
Rule = Callable[[str, str, int], "str | None"]


@dataclass
class FaultProxy:
    upstream_port: int
    rule: Rule = lambda method, path, n: None
    delay_s: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    injected: list[tuple[str, str]] = field(default_factory=list)
    # how each GET of a media file was signed: "presigned" (signature in the query) or "header"
    signing: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                path, _, query = self.path.partition("?")
                if self.command == "GET" and path.endswith((".ts", ".m3u8", ".webm")):
                    presigned = "Signature=" in query or "X-Amz-Signature=" in query
                    with proxy._lock:
                        proxy.signing.append("presigned" if presigned else "header")
                with proxy._lock:
                    n = proxy.counts.get(path, 0) + 1
                    proxy.counts[path] = n
                action = proxy.rule(self.command, path, n)
                if proxy.delay_s:
                    time.sleep(proxy.delay_s)
                if action in ("slowdown", "error500"):
                    with proxy._lock:
                        proxy.injected.append((action, path))
                    code, err = (503, "SlowDown") if action == "slowdown" else (500, "InternalError")
                    payload = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{err}</Code>'
                               f"<Message>injected</Message></Error>").encode()
                    self.send_response(code)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = proxy._upstream()
                headers = {k: v for k, v in self.headers.items()}
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except (OSError, http.client.HTTPException):
                    proxy._local.conn = None
                    self.send_error(502)
                    return
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                        self.send_header(k, v)
                # a HEAD has no body: pass on the length the store announced
                length = resp.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                if action in ("reset", "truncate") and len(data) > 1:
                    with proxy._lock:
                        proxy.injected.append((action, path))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    if action == "reset":   # RST instead of FIN
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._local = threading.local()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def _upstream(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
            self._local.conn = conn
        return conn

    def __enter__(self) -> "FaultProxy":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
