"""HTTP client for the deployment test, run inside the container's network
namespace (`nsenter --net`), where nginx listens on 127.0.0.1:80. Standard
library only. Prints one JSON document on stdout.

    request METHOD PATH [BODY|-|@N] [HEADER:VALUE ...]   (@N: {"val": N bytes})
    stream SECONDS THREADS        requests in a loop until SECONDS have passed
                                  (and the values it wrote)
    connections COUNT CURSOR TIMEOUT   COUNT long-polls at once; their statuses
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import threading
import time

HOST = "127.0.0.1"
PORT = 80
# The status endpoints are served only on the operators' listener (NGINX_STATUS_LISTEN).
STATUS_PORT = 8081
STATUS_PATHS = ("/api/_status", "/api/_metrics")
# The installed site allows 20 writes a second per address (pbp-limits.conf):
# each streaming thread writes at most every WRITE_PACE_S, well under it.
WRITE_PACE_S = 0.5


def request(method: str, path: str, body: str | None = None, headers: dict | None = None, timeout: float = 90):
    port = STATUS_PORT if path.split("?")[0] in STATUS_PATHS else PORT
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        all_headers = {"Content-Type": "application/json"} if body is not None else {}
        all_headers.update(headers or {})
        connection.request(method, path, body=body.encode() if body is not None else None, headers=all_headers)
        response = connection.getresponse()
        data = response.read()
        return {"status": response.status, "headers": {k.lower(): v for k, v in response.getheaders()},
                "body": data.decode("latin-1")}
    finally:
        connection.close()


def stream(seconds: float, threads: int):
    """Reads, writes and short long-polls from several threads; every answer
    that is not the expected status counts as a failure."""
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    counts: dict[str, int] = {}
    failures: list[str] = []
    resets: list[str] = []
    # Each value a write was answered 201 for: the caller looks for them all.
    written: list[str] = []
    run = os.urandom(4).hex()

    def record(kind: str, ok: bool, detail: str):
        with lock:
            counts[kind] = counts.get(kind, 0) + 1
            if not ok and len(failures) < 50:
                failures.append(f"{time.strftime('%H:%M:%S')} {kind}: {detail}")

    def loop(index: int):
        n = 0
        while time.monotonic() < deadline:
            n += 1
            try:
                if index == 0:
                    # A long-poll that waits (2 s), answered by a write or its timeout.
                    first = request("GET", "/api/changes?table=testtype")
                    cursor = json.loads(first["body"])["cursor"]
                    answer = request("POST", "/api/changes", json.dumps(
                        {"cursor": cursor, "subscriptions": [{"table": "testtype"}], "timeout": 2}))
                    if answer["status"] == 409:
                        # A reset is no failure (the client reloads), but a
                        # reload keeps the epoch: count each one apart.
                        with lock:
                            resets.append(f"{time.strftime('%H:%M:%S')} {answer['body'][:200]}")
                    record("poll", answer["status"] in (200, 409), f"{answer['status']} {answer['body'][:200]}")
                elif n % 4 == 0:
                    value = f"stream {run} {index}-{n}"
                    answer = request("POST", "/api/testtype", json.dumps({"val": value}))
                    record("write", answer["status"] == 201, f"{answer['status']} {answer['body'][:200]}")
                    if answer["status"] == 201:
                        with lock:
                            written.append(value)
                    time.sleep(WRITE_PACE_S)
                else:
                    answer = request("GET", "/api/testtype?limit=5")
                    record("read", answer["status"] == 200, f"{answer['status']} {answer['body'][:200]}")
            except (OSError, http.client.HTTPException, ValueError, KeyError) as error:
                record("error", False, repr(error))

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {"counts": counts, "failures": failures, "resets": resets, "written": written}


def connections(count: int, cursor: str, timeout: float):
    """COUNT long-polls open at the same time; each one's status."""
    body = json.dumps({"cursor": cursor, "subscriptions": [{"table": "testtype"}], "timeout": timeout}).encode()
    head = (f"POST /api/changes HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    sockets = []
    for _ in range(count):
        client = socket.create_connection((HOST, PORT), timeout=timeout + 30)
        client.sendall(head + body)
        sockets.append(client)
    statuses = []
    for client in sockets:
        data = b""
        while b"\r\n" not in data:
            chunk = client.recv(4096)
            if not chunk:
                break
            data += chunk
        client.close()
        statuses.append(int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0)
    return {"statuses": statuses}


def main() -> None:
    command, args = sys.argv[1], sys.argv[2:]
    if command == "request":
        method, path = args[0], args[1]
        body = args[2] if len(args) > 2 and args[2] != "-" else None
        if body is not None and body.startswith("@"):
            body = json.dumps({"val": "x" * int(body[1:])})
        headers = dict(item.split(":", 1) for item in args[3:])
        result = request(method, path, body, headers)
    elif command == "stream":
        result = stream(float(args[0]), int(args[1]))
    elif command == "connections":
        result = connections(int(args[0]), args[1], float(args[2]))
    else:
        raise SystemExit(f"unknown command {command}")
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
