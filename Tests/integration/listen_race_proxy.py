"""A unix-socket proxy between pbp-notifyd and PostgreSQL that makes one race
happen every time: a notification that arrives together with the answer to
notifyd's LISTEN.

The proxy passes bytes through, except that once the server's answer to
LISTEN (its CommandComplete) comes by, it holds the server's bytes, calls
`on_listen_answered` (which commits a NOTIFY: the LISTEN is in place by then),
and waits until the notification itself has come from the server. Then it
hands notifyd the LISTEN's answer and the notification in one write, as a
busy server would, so that libpq reads both in the one recv() of its LISTEN.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Callable

# CommandComplete ('C'), length 4 + len("LISTEN\0"), tag "LISTEN".
LISTEN_ANSWERED = b"C\x00\x00\x00\x0bLISTEN\x00"


class ListenRaceProxy:
    def __init__(self, directory: Path, server_socket: Path, on_listen_answered: Callable[[], None],
                 notification_marker: bytes):
        """Listens where libpq looks for `host=directory port=5432`, forwarding
        to the server's socket file `server_socket`."""
        self.path = directory / ".s.PGSQL.5432"
        self.server_socket = server_socket
        self.on_listen_answered = on_listen_answered
        self.notification_marker = notification_marker
        self.race_staged = threading.Event()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if self.path.exists():
            self.path.unlink()
        self.listener.bind(str(self.path))
        os.chmod(self.path, 0o777)
        self.listener.listen(16)
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def accept_loop(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.connect(str(self.server_socket))
            threading.Thread(target=self.pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self.pump_from_server, args=(server, client), daemon=True).start()

    @staticmethod
    def pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            target.close()

    def pump_from_server(self, server: socket.socket, client: socket.socket) -> None:
        held = bytearray()
        try:
            while not self.race_staged.is_set():
                chunk = server.recv(65536)
                if not chunk:
                    return
                held += chunk
                if LISTEN_ANSWERED in held:
                    self.on_listen_answered()
                    while self.notification_marker not in held:
                        chunk = server.recv(65536)
                        if not chunk:
                            return
                        held += chunk
                    self.race_staged.set()
                elif not self.race_staged.is_set() and b"Z\x00\x00\x00\x05" in held:
                    # Authentication and the like: nothing to hold back yet.
                    client.sendall(held)
                    held.clear()
            client.sendall(held)
        except OSError:
            client.close()
            return
        self.pump(server, client)
