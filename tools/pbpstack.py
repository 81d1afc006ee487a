#!/usr/bin/env python3
"""Starts and stops a private PBP stack: PostgreSQL, pbp-notifyd, pbp-fcgi, nginx.

`make run` uses it to bring PBP up on loopback from the repository, and the
integration tests use the same class to start a stack of their own on free
ports in a temporary folder, so that both can share a machine.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATABASE = "pbp"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pg_bindir() -> Path:
    return Path(subprocess.check_output(["pg_config", "--bindir"], text=True).strip())


class StackError(RuntimeError):
    pass


class Stack:
    """One PBP stack under `root`. Its PostgreSQL cluster lives in root/pg and
    survives a stop; everything else is started fresh each time."""

    def __init__(self, root: Path, port: int, bin_dir: Path, log=print,
                 workers: int = 2, threads: int = 4, extra_fcgi_args: list[str] | None = None,
                 extra_notifyd_args: list[str] | None = None,
                 nginx_worker_processes: int = 2, nginx_worker_connections: int = 9000,
                 nginx_rlimit_nofile: int = 20000, nginx_listen_options: str = "",
                 nginx_access_log: str = "on", jwt_key_path: Path | None = None,
                 anonymous_role: str | None = "pbp_anon",
                 server_names: tuple[str, ...] = ("localhost", "127.0.0.1"),
                 status_port: int | None = None, write_limits: bool = False,
                 wal_level: str | None = None, source: str = "notify",
                 listen_address: str = "127.0.0.1", command_prefix: list[str] | None = None,
                 shared_pg_dir: Path | None = None, reaper: bool = True):
        """The nginx_* options exist for the benchmarks (bench/run_bench.py),
        which tune nginx as a deployment expecting 19,000 waiting browsers
        would; their defaults are what `make run` and the tests use.
        nginx_listen_options is appended to the listen directive (for example
        "reuseport backlog=4096"); nginx_access_log is "on", "buffered"
        (64 KB buffer, flushed every second) or "off". server_names are the
        Host names the site answers (others get 421); write_limits installs
        the per-client limits an installed site has (conf/nginx/pbp-limits.conf:
        connections, and writes a second), which the benchmarks would hit.
        wal_level sets PostgreSQL's (None: its default, replica); "logical"
        also gives room for replication connections and slots, for the wal
        source (pbp-notifyd reads a logical replication slot). source is the
        change source, "notify" or "wal": "wal" sets wal_level logical,
        switches the database to it and starts pbp-notifyd --source wal.

        For one app host of several (tools/pbpcluster.py): listen_address is
        where nginx's site and status listeners bind; command_prefix runs
        notifyd, pbp-fcgi and nginx under it (`ip netns exec NS`, the host's
        own network; the operators' listener stays on its 127.0.0.1);
        shared_pg_dir is a PostgreSQL cluster (its socket
        folder) that someone else starts, prepares and stops; reaper=False
        leaves the stopping after a crash of this process to that someone."""
        if source not in ("notify", "wal"):
            raise ValueError(f"source: {source!r}")
        self.source = source
        if source == "wal":
            wal_level = "logical"
        self.root = root.resolve()
        self.port = port
        self.listen_address = listen_address
        self.command_prefix = command_prefix or []
        self.shared_pg = shared_pg_dir is not None
        self.wants_reaper = reaper
        self.server_names = server_names
        # The operators' listener (/api/_status, /api/_metrics): never the public port.
        self.status_port = status_port or free_port()
        self.write_limits = write_limits
        self.wal_level = wal_level
        self.bin_dir = bin_dir.resolve()
        self.log = log
        self.workers = workers
        self.threads = threads
        self.extra_fcgi_args = extra_fcgi_args or []
        self.extra_notifyd_args = extra_notifyd_args or []
        self.nginx_worker_processes = nginx_worker_processes
        self.nginx_worker_connections = nginx_worker_connections
        self.nginx_rlimit_nofile = nginx_rlimit_nofile
        self.nginx_listen_options = nginx_listen_options
        if nginx_access_log not in ("on", "buffered", "off"):
            raise ValueError(f"nginx_access_log: {nginx_access_log!r}")
        self.nginx_access_log = nginx_access_log
        self.as_root = os.geteuid() == 0
        self.pg_dir = shared_pg_dir.resolve() if shared_pg_dir is not None else self.root / "pg"
        # The HS256 secret tokens are signed with (tools/mint_token.py reads
        # the same format), and the role of requests without a token.
        self.jwt_key_path = (jwt_key_path or self.root / "jwt.key").resolve()
        self.anonymous_role = anonymous_role
        self.pg_data = self.pg_dir / "data"
        self.run_dir = self.root / "run"
        self.nginx_dir = self.root / "nginx"
        self.notifyd_socket = self.run_dir / "notifyd.sock"
        self.fcgi_socket = self.run_dir / "fcgi.sock"
        self.fcgi_poll_socket = self.run_dir / "fcgi-poll.sock"
        self.processes: dict[str, subprocess.Popen] = {}
        self.pg_bin = pg_bindir()
        self.reaper: subprocess.Popen | None = None
        self.reaper_pipe: int | None = None

    # -- addresses -------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.listen_address}:{self.port}"

    @property
    def status_url(self) -> str:
        """The operators' listener, where /api/_status and /api/_metrics are served."""
        return f"http://127.0.0.1:{self.status_port}"

    @property
    def artifacts_dir(self) -> Path:
        """Where tests leave what a person may want to look at (screenshots, logs)."""
        path = REPO / "test-artifacts"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def conninfo(self, user: str) -> str:
        return f"host={self.pg_dir} dbname={DATABASE} user={user} connect_timeout=3"

    def pg_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(PGHOST=str(self.pg_dir), PGUSER="postgres", PGDATABASE=DATABASE,
                   PGOPTIONS="-c client_min_messages=warning")
        return env

    # -- lifecycle -------------------------------------------------------

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(exist_ok=True)
        if self.wants_reaper:
            self.start_reaper()
        try:
            if not self.shared_pg:
                self.start_postgres()
                self.prepare_database()
                self.psql(f"select pbp_set_change_source('{self.source}')")
            if self.source == "notify" and not self.shared_pg:
                # A wal run's slot would keep WAL for a reader that is gone.
                self.psql("select pg_drop_replication_slot(slot_name) from pg_replication_slots"
                          " where slot_type = 'logical' and not active and database = current_database()")
            self.start_notifyd()
            self.start_fcgi()
            self.start_nginx()
            self.wait_until_serving()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for name in ("nginx", "pbp-fcgi", "pbp-notifyd"):
            self.stop_process(name)
        if not self.shared_pg:
            self.stop_postgres()
        self.stop_reaper()

    # -- the reaper --------------------------------------------------------

    def start_reaper(self) -> None:
        """A process that outlives this one to stop the stack if this one is
        killed (kill -9, a timeout) before stop()."""
        if self.reaper is None:
            self.reaper, self.reaper_pipe = start_reaper_process(Path(__file__), self.root)

    def stop_reaper(self) -> None:
        """Everything is stopped: the reaper leaves without doing anything."""
        if self.reaper is not None and self.reaper_pipe is not None:
            stand_reaper_down(self.reaper, self.reaper_pipe)
        self.reaper, self.reaper_pipe = None, None

    # -- PostgreSQL -----------------------------------------------------

    def as_postgres(self, command: list[str]) -> list[str]:
        # initdb and postgres refuse to run as root.
        return ["runuser", "-u", "postgres", "--", *command] if self.as_root else command

    def start_postgres(self) -> None:
        if self.as_root:
            self.pg_dir.mkdir(parents=True, exist_ok=True)
            postgres = pwd.getpwnam("postgres")
            os.chown(self.pg_dir, postgres.pw_uid, postgres.pw_gid)
            probe = subprocess.run(self.as_postgres(["test", "-w", str(self.pg_dir)]))
            if probe.returncode != 0:
                raise StackError(f"the postgres user cannot write {self.pg_dir}: make its parent folders traversable")
        else:
            self.pg_dir.mkdir(parents=True, exist_ok=True)
        if not (self.pg_data / "PG_VERSION").exists():
            self.log(f"creating a PostgreSQL cluster in {self.pg_data}")
            subprocess.run(self.as_postgres([
                str(self.pg_bin / "initdb"), "-D", str(self.pg_data), "-U", "postgres",
                "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]),
                check=True, stdout=subprocess.DEVNULL)
        self.stop_stale_postgres()
        subprocess.run(self.as_postgres([
            str(self.pg_bin / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.pg_data),
            "-l", str(self.pg_dir / "postgresql.log"),
            "-o", f"{self.postgres_options()} -c fsync=on"]),
            check=True, stdout=subprocess.DEVNULL)

    def postgres_options(self) -> str:
        """The server's command line options, the same at every start and restart."""
        options = f"-k {self.pg_dir} -c listen_addresses='' -c max_connections=300"
        wal_level = self.wal_level
        if wal_level is None and self.has_replication_slots():
            # PostgreSQL refuses to start below logical while a logical slot
            # exists (a `make run SOURCE=wal` before this one): this start
            # keeps logical, and start() drops the slot.
            wal_level = "logical"
        if wal_level is not None:
            options += f" -c wal_level={wal_level}"
        if wal_level == "logical":
            options += " -c max_wal_senders=20 -c max_replication_slots=20"
        return options

    def has_replication_slots(self) -> bool:
        slots = self.pg_data / "pg_replslot"
        try:
            return slots.is_dir() and any(slots.iterdir())
        except PermissionError:
            return False

    def stop_stale_postgres(self) -> None:
        """A cluster left running by a killed `make run` is stopped first."""
        if (self.pg_data / "postmaster.pid").exists():
            subprocess.run(self.as_postgres([str(self.pg_bin / "pg_ctl"), "stop", "-m", "fast", "-D", str(self.pg_data)]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def restart_postgres(self) -> None:
        subprocess.run(self.as_postgres([
            str(self.pg_bin / "pg_ctl"), "restart", "-m", "fast", "-w", "-D", str(self.pg_data),
            "-o", self.postgres_options()]),
            check=True, stdout=subprocess.DEVNULL)

    def stop_postgres(self) -> None:
        if (self.pg_data / "postmaster.pid").exists():
            subprocess.run(self.as_postgres([
                str(self.pg_bin / "pg_ctl"), "stop", "-m", "fast", "-w", "-D", str(self.pg_data)]),
                stdout=subprocess.DEVNULL)

    def prepare_database(self) -> None:
        exists = self.psql(f"select 1 from pg_database where datname = '{DATABASE}'", database="postgres").strip()
        script = "reinitdb.sh" if exists != "1" else "migrate.sh"
        self.log(("creating" if exists != "1" else "migrating") + f" database {DATABASE}")
        subprocess.run([str(REPO / "sql" / script), DATABASE], check=True, env=self.pg_env(),
                       stdout=subprocess.DEVNULL)

    def psql(self, sql: str, database: str = DATABASE) -> str:
        """Runs SQL on a connection of its own, as the superuser; returns the rows, unaligned."""
        result = subprocess.run(
            ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql],
            env=self.pg_env(), capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise StackError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    # -- PBP's processes ---------------------------------------------------

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "ab")
        process = subprocess.Popen([*self.command_prefix, *command], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = process
        return process

    def start_notifyd(self) -> None:
        if self.notifyd_socket.exists():
            self.notifyd_socket.unlink()
        source = (["--source", "wal", "--conninfo", self.conninfo("pbp_wal")] if self.source == "wal"
                  else ["--conninfo", self.conninfo("pbp_notifyd")])
        self.spawn("pbp-notifyd", [
            str(self.bin_dir / "pbp-notifyd"), *source,
            "--socket", str(self.notifyd_socket), "--socket-mode", "0600", *self.extra_notifyd_args])
        self.wait_for_path(self.notifyd_socket, "pbp-notifyd")

    def ensure_jwt_key(self) -> None:
        """A key file of 64 random bytes as base64url, made once (mode 0600)."""
        self.jwt_key_path.parent.mkdir(parents=True, exist_ok=True)
        text = base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=") + b"\n"
        try:
            descriptor = os.open(self.jwt_key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        with os.fdopen(descriptor, "wb") as file:
            file.write(text)

    def start_fcgi(self) -> None:
        self.ensure_jwt_key()
        identity = ["--jwt-secret-file", str(self.jwt_key_path)]
        if self.anonymous_role:
            identity += ["--anonymous-role", self.anonymous_role]
        self.spawn("pbp-fcgi", [
            str(self.bin_dir / "pbp-fcgi"), "--conninfo", self.conninfo("pbp_app"), *identity,
            "--socket", str(self.fcgi_socket), "--socket-mode", "0660", "--poll-socket", str(self.fcgi_poll_socket),
            "--notifyd-socket", str(self.notifyd_socket),
            "--workers", str(self.workers), "--threads", str(self.threads), *self.extra_fcgi_args])
        self.wait_for_path(self.fcgi_socket, "pbp-fcgi")

    def start_nginx(self) -> None:
        (self.nginx_dir / "tmp").mkdir(parents=True, exist_ok=True)
        shutil.copy("/etc/nginx/fastcgi_params", self.nginx_dir / "fastcgi_params")
        limits = self.nginx_dir / "pbp-site.d"
        limits.mkdir(exist_ok=True)
        for old in limits.glob("*.conf"):
            old.unlink()
        if self.write_limits:
            shutil.copy(REPO / "conf" / "nginx" / "pbp-limits.conf", limits / "limits.conf")
        site = (REPO / "conf" / "nginx" / "pbp-site.conf.in").read_text()
        listen = f"{self.listen_address}:{self.port}" + (f" {self.nginx_listen_options}" if self.nginx_listen_options else "")
        site = (site.replace("@LISTEN@", listen)
                    .replace("@SERVER_NAME_MAP@", " ".join(f"{name} 1;" for name in self.server_names))
                    .replace("@SERVER_NAME@", " ".join(self.server_names))
                    .replace("@STATUS_LISTEN@", f"127.0.0.1:{self.status_port}")
                    .replace("@STATIC_ROOT@", str(REPO / "static"))
                    .replace("@FCGI_SOCKET@", str(self.fcgi_socket))
                    .replace("@FCGI_POLL_SOCKET@", str(self.fcgi_poll_socket)))
        (self.nginx_dir / "pbp-site.conf").write_text(site)
        tmp = self.nginx_dir / "tmp"
        user_line = "user root;" if self.as_root else ""
        access_log = {"on": f"access_log {self.nginx_dir}/access.log pbp;",
                      "buffered": f"access_log {self.nginx_dir}/access.log pbp buffer=64k flush=1s;",
                      "off": "access_log off;"}[self.nginx_access_log]
        (self.nginx_dir / "nginx.conf").write_text(f"""# Generated by tools/pbpstack.py for a development stack.
{user_line}
worker_processes {self.nginx_worker_processes};
worker_rlimit_nofile {self.nginx_rlimit_nofile};
pid {self.nginx_dir}/nginx.pid;
error_log {self.nginx_dir}/error.log warn;
events {{ worker_connections {self.nginx_worker_connections}; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    log_format pbp '$remote_addr [$time_local] "$request" $status $body_bytes_sent $request_time $msec';
    {access_log}
    client_body_temp_path {tmp}/body;
    fastcgi_temp_path {tmp}/fastcgi;
    proxy_temp_path {tmp}/proxy;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {self.nginx_dir}/pbp-site.conf;
}}
""")
        self.spawn("nginx", ["nginx", "-c", str(self.nginx_dir / "nginx.conf"), "-p", str(self.nginx_dir),
                             "-g", "daemon off;"])

    def wait_for_path(self, path: Path, name: str, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not path.exists():
            self.check_alive(name)
            if time.monotonic() > deadline:
                raise StackError(f"{name} did not create {path} within {seconds} s; see {self.root}/{name}.log")
            time.sleep(0.02)

    def check_alive(self, name: str) -> None:
        process = self.processes.get(name)
        if process is not None and process.poll() is not None:
            raise StackError(f"{name} exited with {process.returncode}; see {self.root}/{name}.log")

    def served_table(self) -> str | None:
        """The first table the API describes, if it answers."""
        try:
            connection = http.client.HTTPConnection(self.listen_address, self.port, timeout=5)
            connection.request("GET", "/api/_tables")
            response = connection.getresponse()
            body = response.read()
            connection.close()
            tables = json.loads(body)["tables"] if response.status == 200 else []
            return tables[0]["name"] if tables else None
        except (OSError, ValueError, KeyError):
            return None

    def wait_until_serving(self, seconds: float = 30) -> None:
        """Until a snapshot read answers 200 through nginx: database, notifyd and workers all ready."""
        deadline = time.monotonic() + seconds
        last = "no answer"
        table = "testtype"
        while time.monotonic() < deadline:
            for name in self.processes:
                self.check_alive(name)
            try:
                connection = http.client.HTTPConnection(self.listen_address, self.port, timeout=5)
                connection.request("GET", f"/api/{table}?limit=1")
                response = connection.getresponse()
                response.read()
                connection.close()
                if response.status == 200:
                    return
                if response.status == 401 and not self.anonymous_role:
                    return  # the workers answer; without an anonymous role, only to tokens
                if response.status == 404 and table == "testtype":
                    table = self.served_table() or table  # --tables may leave testtype out
                last = f"status {response.status}"
            except OSError as error:
                last = str(error)
            time.sleep(0.05)
        raise StackError(f"the stack did not serve within {seconds} s ({last}); logs in {self.root}")

    def stop_process(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def worker_pids(self) -> list[int]:
        """pbp-fcgi's worker processes: the master's children."""
        master = self.pid("pbp-fcgi")
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        return [int(pid) for pid in children]

    def kill(self, name: str) -> None:
        """kill -9, as a crash would."""
        process = self.processes.pop(name)
        process.kill()
        process.wait()


REAPER_STAND_DOWN = b"stopped"


def start_reaper_process(script: Path, root: Path) -> tuple[subprocess.Popen, int]:
    """`script reap --root ROOT` in a session of its own, waiting for the end
    of a pipe whose only writer is this process (not inherited by the stack's
    processes): it cleans up `root` when this process dies without standing
    it down. Returns the process and the pipe's write end."""
    read_end, write_end = os.pipe()
    with open(root / "reaper.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, str(script.resolve()), "reap", "--root", str(root)],
            stdin=read_end, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    os.close(read_end)
    return process, write_end


def stand_reaper_down(process: subprocess.Popen, pipe: int) -> None:
    """Everything is stopped: the reaper leaves without doing anything."""
    os.write(pipe, REAPER_STAND_DOWN)
    os.close(pipe)
    process.wait(timeout=10)


def processes_under(root: Path) -> list[tuple[int, bytes]]:
    """(pid, command line) of every other process whose command line names a
    file inside `root`: a stack's processes all do, and nothing else would."""
    marker = str(root).encode() + b"/"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmdline:
            found.append((int(entry.name), cmdline))
    return found


def reap(root: Path) -> int:
    """Waits until the stack's owner stops it (exit 0) or dies (exit 3). After a death, stops
    what still runs under `root`: PBP's processes and nginx's master (found by
    the folder in their command lines, so a reused pid is never hit) and the
    PostgreSQL cluster."""
    message = sys.stdin.buffer.read()
    if message == REAPER_STAND_DOWN:
        return 0
    for pid, cmdline in processes_under(root):
        program = Path(cmdline.split(b"\0", 1)[0].decode(errors="replace")).name
        # PostgreSQL is stopped with pg_ctl below; pbp-fcgi's workers die with their master.
        if program in ("pbp-notifyd", "pbp-fcgi", "nginx") or cmdline.startswith(b"nginx: master"):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    pg_data = root / "pg" / "data"
    if (pg_data / "postmaster.pid").exists():
        pg_ctl = [str(pg_bindir() / "pg_ctl"), "stop", "-m", "immediate", "-D", str(pg_data)]
        if os.geteuid() == 0:
            pg_ctl = ["runuser", "-u", "postgres", "--", *pg_ctl]
        subprocess.run(pg_ctl, stdout=subprocess.DEVNULL)
    print(f"pbpstack: its owner died; stopped the stack in {root}", file=sys.stderr)
    return 3


def default_root() -> Path:
    """The repository's .pbp folder, or, when the postgres user cannot reach
    it (a checkout under /root), a folder of the same name under /var/tmp."""
    root = REPO / ".pbp"
    if os.geteuid() == 0:
        reachable = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(REPO)]).returncode == 0
        if not reachable:
            digest = hashlib.sha1(str(REPO).encode()).hexdigest()[:12]
            root = Path("/var/tmp") / f"pbp-{digest}"
            (REPO / ".pbp").mkdir(exist_ok=True)
            link = REPO / ".pbp" / "state"
            if not link.exists():
                link.symlink_to(root)
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["run", "reap"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--bin-dir", type=Path)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--root", type=Path, help="reap: the stack's folder")
    parser.add_argument("--source", choices=["notify", "wal"], default=os.environ.get("SOURCE") or "notify",
                        help="the change source (SOURCE=wal for make run)")
    args = parser.parse_args()
    if args.command == "reap":
        if args.root is None:
            parser.error("reap needs --root")
        return reap(args.root)
    if args.bin_dir is None:
        parser.error("run needs --bin-dir")

    stack = Stack(default_root(), args.port, args.bin_dir, workers=args.workers,
                  jwt_key_path=REPO / ".pbp" / "jwt.key", status_port=args.port + 1, source=args.source)
    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        stack.start()
    except StackError as error:
        print(f"pbp: {error}", file=sys.stderr)
        return 1
    print(f"\nPBP is running at {stack.base_url}/  (logs in {stack.root}; Ctrl-C stops it)\n"
          f"Without a token the page acts as {stack.anonymous_role} (testtype, todo). To sign in as alice:\n"
          f"  make token SUB=alice   (signed with {stack.jwt_key_path}), then open\n"
          f"  {stack.base_url}/#/notes&token=<the token>\n"
          f"The pool's status (operators' listener): {stack.status_url}/api/_status\n", flush=True)
    try:
        while not stopping:
            for name in list(stack.processes):
                if stack.processes[name].poll() is not None:
                    print(f"pbp: {name} exited; see {stack.root}/{name}.log", file=sys.stderr)
                    stopping = True
            time.sleep(0.2)
    finally:
        print("stopping PBP…", flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
