"""A subscriber that speaks pbp-notifyd's protocol (docs/notifyd-protocol.md)
directly, as a worker does, so that tests can watch the stream itself.

Positions are the notify source's sequence numbers as ints (minor 0), and the
wal source's (commit LSN, index + 1) as (major, minor) tuples."""

from __future__ import annotations

import socket
import struct
import time

HELLO, WELCOME, EVENT, NEW_EPOCH = 1, 2, 3, 4
VERSION = 2


def position_of(major: int, minor: int):
    return major if minor == 0 else (major, minor)


def wire_position(position) -> bytes:
    major, minor = (position, 0) if isinstance(position, int) else position
    return struct.pack(">QI", major, minor)


class NotifydClient:
    def __init__(self, path, cursor: tuple | None = None, read_buffer: int | None = None,
                 history: int = 0):
        self.path = path
        self.epoch = None
        self.last_seq = None
        self.reconnects = 0
        self.history = history
        self.connect(cursor, read_buffer)

    def connect(self, cursor, read_buffer=None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if read_buffer is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, read_buffer)
        self.sock.connect(str(self.path))
        self.buffer = bytearray()
        self.offset = 0
        body = (struct.pack(">BHB", HELLO, VERSION, 0) if cursor is None
                else struct.pack(">BHBQ", HELLO, VERSION, 1, cursor[0]) + wire_position(cursor[1]))
        if self.history:
            body += struct.pack(">I", self.history)
        self.sock.sendall(struct.pack(">I", len(body)) + body)

    def close(self) -> None:
        self.sock.close()

    def frame(self, timeout: float = 10):
        """The next frame as (type, fields), or None when notifyd closed the connection."""
        deadline = time.monotonic() + timeout
        while True:
            available = len(self.buffer) - self.offset
            if available >= 4:
                (length,) = struct.unpack_from(">I", self.buffer, self.offset)
                if available >= 4 + length:
                    body = bytes(self.buffer[self.offset + 4:self.offset + 4 + length])
                    self.offset += 4 + length
                    return self.decode(body)
            if self.offset:
                del self.buffer[:self.offset]
                self.offset = 0
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no frame from pbp-notifyd")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                return None
            self.buffer += chunk

    @staticmethod
    def decode(body: bytes):
        kind = body[0]
        if kind == WELCOME:
            version, epoch, major, minor, resumed = struct.unpack(">HQQIB", body[1:])
            return WELCOME, (epoch, position_of(major, minor), bool(resumed))
        if kind == EVENT:
            major, minor = struct.unpack(">QI", body[1:13])
            return EVENT, (position_of(major, minor), body[13:])
        if kind == NEW_EPOCH:
            epoch, major, minor = struct.unpack(">QQI", body[1:])
            return NEW_EPOCH, (epoch, position_of(major, minor))
        raise AssertionError(f"unexpected frame type {kind}")

    def welcome(self):
        kind, fields = self.frame()
        assert kind == WELCOME, (kind, fields)
        self.epoch, self.last_seq = fields[0], fields[1]
        return fields

    def events(self, count: int, timeout: float = 60, resume: bool = False) -> list[tuple[int, bytes]]:
        """The next `count` events. With `resume`, a subscriber cut off for
        falling behind reconnects from its cursor, as a worker does."""
        received = []
        deadline = time.monotonic() + timeout
        while len(received) < count:
            frame = self.frame(max(0.01, deadline - time.monotonic()))
            if frame is None and resume:
                self.sock.close()
                self.buffer.clear()
                self.offset = 0
                cursor = (self.epoch, self.last_seq)
                self.connect(cursor)
                _, _, resumed = self.welcome()
                assert resumed, "a subscriber that reconnects to a live notifyd resumes from the ring"
                self.last_seq = cursor[1]
                self.reconnects += 1
                continue
            assert frame is not None, f"notifyd closed the stream after {len(received)} events"
            kind, fields = frame
            assert kind == EVENT, (kind, fields)
            received.append(fields)
            self.last_seq = fields[0]
        return received
