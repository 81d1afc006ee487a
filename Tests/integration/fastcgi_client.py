"""A FastCGI client that speaks to pbp-fcgi's socket directly, past nginx, so
that a test can send what nginx never would: a body shorter than its
CONTENT_LENGTH, or a connection half-closed in the middle of the body."""

from __future__ import annotations

import json
import socket
import struct

VERSION = 1
BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR = 1, 3, 4, 5, 6, 7
RESPONDER = 1


def record(kind: int, content: bytes, request_id: int = 1) -> bytes:
    return struct.pack(">BBHHBB", VERSION, kind, request_id, len(content), 0, 0) + content


def name_value(name: bytes, value: bytes) -> bytes:
    def length(n: int) -> bytes:
        return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    return length(len(name)) + length(len(value)) + name + value


def request_head(params: dict[str, str]) -> bytes:
    """BEGIN_REQUEST and the whole PARAMS stream of request 1."""
    encoded = b"".join(name_value(k.encode(), v.encode()) for k, v in params.items())
    return (record(BEGIN_REQUEST, struct.pack(">HB5x", RESPONDER, 0))
            + record(PARAMS, encoded) + record(PARAMS, b""))


def params_for(method: str, path: str, content_type: str | None = None, content_length: int | None = None,
               query: str = "") -> dict[str, str]:
    params = {"REQUEST_METHOD": method, "DOCUMENT_URI": path, "SCRIPT_NAME": path, "QUERY_STRING": query,
              "SERVER_PROTOCOL": "HTTP/1.1"}
    if content_type is not None:
        params["CONTENT_TYPE"] = content_type
    if content_length is not None:
        params["CONTENT_LENGTH"] = str(content_length)
    return params


class FastCGIResponse:
    def __init__(self, stdout: bytes):
        head, _, self.body = stdout.partition(b"\r\n\r\n")
        self.headers = {}
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            self.headers[name.strip().lower().decode()] = value.strip().decode()
        self.status = int(self.headers.get("status", "200").split()[0])

    def json(self):
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<FastCGI {self.status} {self.body[:300]!r}>"


def read_response(sock: socket.socket) -> FastCGIResponse:
    """The STDOUT stream of request 1, up to its END_REQUEST."""
    data, stdout = b"", b""
    while True:
        while len(data) < 8:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"the worker closed the connection before END_REQUEST: {stdout[:200]!r}")
            data += chunk
        _, kind, _, length, padding, _ = struct.unpack(">BBHHBB", data[:8])
        while len(data) < 8 + length + padding:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the worker closed the connection inside a record")
            data += chunk
        content, data = data[8:8 + length], data[8 + length + padding:]
        if kind == STDOUT:
            stdout += content
        elif kind == END_REQUEST:
            return FastCGIResponse(stdout)


def exchange(socket_path, params: dict[str, str], stdin: bytes, end_stdin: bool = True,
             half_close: bool = False, timeout: float = 30) -> FastCGIResponse:
    """Sends one request (`stdin` as STDIN records, then the empty record that
    ends the stream unless `end_stdin` is false; `half_close` shuts the
    sending side down after that) and reads its response."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(socket_path))
        data = request_head(params)
        for start in range(0, len(stdin), 65535):
            data += record(STDIN, stdin[start:start + 65535])
        if end_stdin:
            data += record(STDIN, b"")
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return read_response(sock)
