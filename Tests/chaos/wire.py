"""The wire for the convergence harness's writers: a small HTTP/1.1 client
with keep-alive connections (the API writers) and a minimal PostgreSQL client
(simple query protocol over the cluster's unix socket, trust authentication;
the SQL writers and the reads of the truth), both on asyncio, standard
library only. The simulated browsers use Node's fetch (browser_env.mjs)."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field


# --- HTTP/1.1 ------------------------------------------------------------------


class NetError(Exception):
    """No usable answer: refused, reset, closed early, or timed out."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.got_bytes = False     # any byte of the current answer received
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            transport = self.writer.transport
            if transport is not None:
                transport.abort()

    async def exchange(self, host: str, method: str, path: str, body: bytes | None,
                       headers: dict[str, str]) -> tuple[Response, bool]:
        """One request and its answer; returns it and whether the connection may be reused."""
        self.got_bytes = False
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.writer.write(head + (body or b""))
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise NetError("connection closed before the answer")
        self.got_bytes = True
        parts = status_line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise NetError(f"bad status line {status_line!r}")
        status = int(parts[1])
        response_headers: dict[str, str] = {}
        while True:
            line = await self.reader.readline()
            if not line:
                raise NetError("connection closed in the headers")
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode("latin-1").partition(":")
            response_headers[name.strip().lower()] = value.strip()
        keep = parts[0] == "HTTP/1.1" and response_headers.get("connection", "").lower() != "close"
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            data = b""
        elif response_headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size_line = await self.reader.readline()
                if not size_line:
                    raise NetError("connection closed in a chunk")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while (await self.reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            data = b"".join(chunks)
        elif "content-length" in response_headers:
            data = await self.reader.readexactly(int(response_headers["content-length"]))
        else:
            data = await self.reader.read()
            keep = False
        return Response(status, response_headers, data), keep


class HttpAgent:
    """The connections of one writer to one origin: reused while idle
    (keep-alive), at most `max_idle` kept. A request on a reused connection
    that the server had already closed, before any byte of the answer, is
    sent again once on a new connection, as browsers do."""

    def __init__(self, host: str, port: int, max_idle: int = 6):
        self.host = host
        self.port = port
        self.max_idle = max_idle
        self.idle: list[_Connection] = []
        self.active: set[_Connection] = set()
        self.requests = 0
        self.connections_opened = 0

    async def _open(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 22)
        self.connections_opened += 1
        return _Connection(reader, writer)

    async def request(self, method: str, path: str, body: bytes | None = None,
                      headers: dict[str, str] | None = None, timeout: float = 15.0) -> Response:
        headers = headers or {}
        self.requests += 1
        for attempt in range(2):
            connection = self.idle.pop() if self.idle else None
            reused = connection is not None
            if connection is not None:
                self.active.add(connection)
            try:
                async with asyncio.timeout(timeout):
                    if connection is None:
                        connection = await self._open()
                        self.active.add(connection)
                    response, keep = await connection.exchange(
                        f"{self.host}:{self.port}", method, path, body, headers)
            except TimeoutError as error:       # (an OSError: first)
                if connection is not None:
                    connection.close()
                    self.active.discard(connection)
                raise NetError("timeout") from error
            except (OSError, EOFError, asyncio.IncompleteReadError, NetError, ValueError) as error:
                if connection is not None:
                    connection.close()
                    self.active.discard(connection)
                if reused and attempt == 0 and not connection.got_bytes:
                    continue
                raise NetError(f"{type(error).__name__}: {error}") from error
            except BaseException:
                if connection is not None:
                    connection.close()
                    self.active.discard(connection)
                raise
            self.active.discard(connection)
            if keep and len(self.idle) < self.max_idle:
                self.idle.append(connection)
            else:
                connection.close()
            return response
        raise NetError("unreachable")

    def close_all(self) -> None:
        for connection in list(self.idle) + list(self.active):
            connection.close()
        self.idle.clear()
        self.active.clear()


# --- PostgreSQL ------------------------------------------------------------------


class PgError(Exception):
    def __init__(self, message: str, sqlstate: str | None = None):
        super().__init__(message)
        self.sqlstate = sqlstate


class PgConnectionLost(Exception):
    """The connection broke: the outcome of the statement in flight is unknown."""


@dataclass
class PgResult:
    rows: list[list[str | None]] = field(default_factory=list)
    error: PgError | None = None
    status: str = "I"   # transaction status after the query: I idle, T in a block, E failed block


class PgConnection:
    """One connection, simple query protocol. A string of several statements
    runs as PostgreSQL runs it (explicit BEGIN/COMMIT inside it work)."""

    def __init__(self, socket_dir: str, user: str = "postgres", database: str = "pbp"):
        self.path = f"{socket_dir}/.s.PGSQL.5432"
        self.user = user
        self.database = database
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            self.reader, self.writer = await asyncio.open_unix_connection(self.path, limit=1 << 24)
            params = f"user\0{self.user}\0database\0{self.database}\0client_encoding\0UTF8\0\0".encode()
            self.writer.write(struct.pack("!ii", 8 + len(params), 196608) + params)
            await self.writer.drain()
            while True:
                kind, payload = await self._message()
                if kind == b"R":
                    code = struct.unpack("!i", payload[:4])[0]
                    if code != 0:
                        raise PgError(f"authentication method {code} is not supported (trust expected)")
                elif kind == b"E":
                    raise self._error(payload)
                elif kind == b"Z":
                    return

    def close(self) -> None:
        if self.writer is not None:
            transport = self.writer.transport
            if transport is not None:
                transport.abort()
            self.writer = None

    @property
    def connected(self) -> bool:
        return self.writer is not None

    async def _message(self) -> tuple[bytes, bytes]:
        head = await self.reader.readexactly(5)
        kind, length = head[:1], struct.unpack("!i", head[1:])[0]
        return kind, await self.reader.readexactly(length - 4)

    @staticmethod
    def _error(payload: bytes) -> PgError:
        fields = {}
        for part in payload.split(b"\0"):
            if part:
                fields[part[:1]] = part[1:].decode(errors="replace")
        return PgError(fields.get(b"M", "error"), fields.get(b"C"))

    async def query(self, sql: str, timeout: float = 60.0) -> PgResult:
        if self.writer is None:
            raise PgConnectionLost("not connected")
        data = sql.encode() + b"\0"
        result = PgResult()
        try:
            async with asyncio.timeout(timeout):
                self.writer.write(b"Q" + struct.pack("!i", 4 + len(data)) + data)
                await self.writer.drain()
                while True:
                    kind, payload = await self._message()
                    if kind == b"D":
                        count = struct.unpack("!h", payload[:2])[0]
                        offset, row = 2, []
                        for _ in range(count):
                            size = struct.unpack("!i", payload[offset:offset + 4])[0]
                            offset += 4
                            if size < 0:
                                row.append(None)
                            else:
                                row.append(payload[offset:offset + size].decode())
                                offset += size
                        result.rows.append(row)
                    elif kind == b"E":
                        result.error = result.error or self._error(payload)
                    elif kind == b"Z":
                        result.status = payload[:1].decode()
                        return result
        except (OSError, EOFError, asyncio.IncompleteReadError, TimeoutError) as error:
            self.close()
            raise PgConnectionLost(f"{type(error).__name__}: {error}") from error
        except BaseException:
            self.close()
            raise
