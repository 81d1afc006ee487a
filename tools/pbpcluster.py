#!/usr/bin/env python3
"""Several PBP app hosts on one PostgreSQL behind a load balancer, on one machine.

Each host is a tools/pbpstack.py Stack (nginx, pbp-fcgi, pbp-notifyd
--source wal with a slot of its own, pbp_<host>) whose processes run in a
network namespace of their own, with an address of their own on a bridge
(10.77.N.1/24 in this namespace, the hosts 10.77.N.11, .12, ...). They reach
PostgreSQL through its unix socket folder, which works across network
namespaces, and the balancer (an nginx in this namespace on 127.0.0.1, round
robin, no stickiness) reaches them over the bridge. Nothing leaves the machine.

Faults for the tests: kill_host (SIGKILL to every process in the host's
namespace, as a power cut would), restart_host, kill_notifyd, and
restart_postgres. Names (namespaces, links, subnet) are unique per run; stop()
removes them, and a reaper process does the same if this one dies first.

  python3 tools/pbpcluster.py run --bin-dir "$(swift build --show-bin-path)" --hosts 3
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pbpstack import (REAPER_STAND_DOWN, Stack, StackError, free_port, pg_bindir, processes_under,  # noqa: E402
                      stand_reaper_down, start_reaper_process)

HOST_PORT = 8080          # each host's site, on its own address (its own namespace: no collisions)
HOST_STATUS_PORT = 8081   # each host's operators' listener, on the same address


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def subnets_in_use() -> set[int]:
    """The N of every 10.77.N.0/24 with an address here: another run's bridge."""
    used = set()
    for line in ip("-o", "-4", "addr", "show").stdout.splitlines():
        for word in line.split():
            if word.startswith("10.77."):
                used.add(int(word.split(".")[2]))
    return used


class Network:
    """The bridge and each host's namespace and veth pair of one run. What it
    made is written to `record` first, so that the reaper can remove it."""

    def __init__(self, record: Path, hosts: list[str]):
        self.record = record
        self.tag = secrets.token_hex(3)                 # interface names are at most 15 bytes
        self.bridge = f"pbr{self.tag}"
        used = subnets_in_use()
        free = [n for n in range(1, 255) if n not in used]
        if not free:
            raise StackError("no free 10.77.N.0/24 subnet")
        self.subnet = free[secrets.randbelow(len(free))]
        self.gateway = f"10.77.{self.subnet}.1"
        self.namespaces = {host: f"pbp{self.tag}{host}" for host in hosts}
        self.addresses = {host: f"10.77.{self.subnet}.{11 + i}" for i, host in enumerate(hosts)}
        self.made: list[tuple[str, str]] = []            # ("netns"|"link", name), in the order made

    def save(self) -> None:
        self.record.write_text(json.dumps(self.made))

    def create(self) -> None:
        self.made.append(("link", self.bridge))
        self.save()
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for i, (host, namespace) in enumerate(self.namespaces.items()):
            outside = f"pv{self.tag}{i}"
            self.made += [("netns", namespace), ("link", outside)]
            self.save()
            ip("netns", "add", namespace)
            ip("link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            ip("link", "set", outside, "master", self.bridge, "up")
            inside = ["netns", "exec", namespace, "ip"]
            ip(*inside, "addr", "add", f"{self.addresses[host]}/24", "dev", "eth0")
            ip(*inside, "link", "set", "eth0", "up")
            ip(*inside, "link", "set", "lo", "up")

    def prefix(self, host: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespaces[host]]

    def pids(self, host: str) -> list[int]:
        """Every process in the host's namespace."""
        listing = ip("netns", "pids", self.namespaces[host], check=False).stdout
        return [int(pid) for pid in listing.split()]

    def remove(self) -> None:
        remove_network(self.made)
        self.made = []
        self.save()


def remove_network(made: list) -> None:
    """Namespaces (with their processes, which must be gone by then, and
    their veth ends) and links, last made first; what is gone already is skipped."""
    for kind, name in reversed(made):
        if kind == "netns":
            ip("netns", "del", name, check=False)
        else:
            ip("link", "del", name, check=False)


class Cluster:
    """One PostgreSQL (wal_level logical), `hosts` app hosts, one balancer."""

    def __init__(self, root: Path, bin_dir: Path, hosts: int = 3, log=print, workers: int = 1, threads: int = 4,
                 extra_fcgi_args: list[str] | None = None, extra_notifyd_args: dict[str, list[str]] | None = None,
                 balancer_port: int | None = None):
        if os.geteuid() != 0:
            raise StackError("a cluster needs root (network namespaces)")
        self.root = root.resolve()
        self.bin_dir = bin_dir
        self.log = log
        self.host_names = [chr(ord("a") + i) for i in range(hosts)]
        self.port = balancer_port or free_port()
        self.balancer_dir = self.root / "balancer"
        # The database's stack: only its PostgreSQL is used (start_postgres,
        # prepare_database, psql); the hosts share its socket folder.
        self.db = Stack(self.root / "db", free_port(), bin_dir, log=log, source="wal", reaper=False)
        self.pg_dir = self.db.pg_dir
        self.jwt_key_path = self.root / "jwt.key"
        self.network: Network | None = None
        self.hosts: dict[str, Stack] = {}
        self.workers, self.threads = workers, threads
        self.extra_fcgi_args = extra_fcgi_args or []
        self.extra_notifyd_args = extra_notifyd_args or {}
        self.balancer: subprocess.Popen | None = None
        self.reaper: subprocess.Popen | None = None
        self.reaper_pipe: int | None = None
        self.down: set[str] = set()

    # -- addresses ---------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def host_url(self, host: str) -> str:
        return self.hosts[host].base_url

    def status(self, host: str, what: str = "_status") -> str:
        """The host's /api/_status (or _metrics) as its operators see it: from
        its own 127.0.0.1 (the only address that listener serves)."""
        result = subprocess.run([*self.network.prefix(host), "curl", "-sS", "--max-time", "10",
                                 f"{self.hosts[host].status_url}/api/{what}"],
                                capture_output=True, text=True, timeout=20)
        if result.returncode != 0:
            raise StackError(f"host {host}'s /api/{what}: {result.stderr.strip()}")
        return result.stdout

    def address(self, host: str) -> str:
        return self.network.addresses[host]

    def host_of_address(self, address: str) -> str | None:
        """The host an upstream address (10.77.N.1x:8080) of the balancer's log names."""
        ip_part = address.rsplit(":", 1)[0]
        for host, known in self.network.addresses.items():
            if known == ip_part:
                return host
        return None

    def slot(self, host: str) -> str:
        return f"pbp_{host}"

    def psql(self, sql: str) -> str:
        return self.db.psql(sql)

    def conninfo(self, user: str) -> str:
        return self.db.conninfo(user)

    @property
    def access_log(self) -> Path:
        return self.balancer_dir / "access.log"

    # -- lifecycle -----------------------------------------------------------------

    def start(self, hosts: list[str] | None = None) -> None:
        """PostgreSQL, the network, the hosts named (default all) and the balancer."""
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)  # the postgres user goes through it to its cluster
        self.start_reaper()
        try:
            self.db.root.mkdir(parents=True, exist_ok=True)
            self.db.run_dir.mkdir(exist_ok=True)
            self.db.start_postgres()
            self.db.prepare_database()
            self.psql("select pbp_set_change_source('wal')")
            self.db.jwt_key_path = self.jwt_key_path
            self.db.ensure_jwt_key()
            self.network = Network(self.root / "network.json", self.host_names)
            self.network.create()
            for host in self.host_names:
                self.hosts[host] = self.make_host(host)
            for host in hosts if hosts is not None else self.host_names:
                self.start_host(host)
            self.down = set(self.host_names) - set(hosts if hosts is not None else self.host_names)
            self.start_balancer()
        except BaseException:
            self.stop()
            raise

    def make_host(self, host: str) -> Stack:
        address = self.network.addresses[host]
        return Stack(self.root / f"host-{host}", HOST_PORT, self.bin_dir, log=self.log, source="wal",
                     workers=self.workers, threads=self.threads, status_port=HOST_STATUS_PORT,
                     jwt_key_path=self.jwt_key_path, listen_address=address,
                     server_names=("localhost", "127.0.0.1", address),
                     command_prefix=self.network.prefix(host), shared_pg_dir=self.pg_dir, reaper=False,
                     extra_fcgi_args=self.extra_fcgi_args,
                     extra_notifyd_args=["--slot", self.slot(host), *self.extra_notifyd_args.get(host, [])])

    def stop(self) -> None:
        if self.balancer is not None and self.balancer.poll() is None:
            self.balancer.terminate()
            try:
                self.balancer.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.balancer.kill()
                self.balancer.wait()
        for host, stack in self.hosts.items():
            stack.stop()
            if self.network is not None:
                self.kill_everything_in(host)
        if self.network is not None:
            self.network.remove()
        self.db.stop_postgres()
        self.stop_reaper()

    # -- faults ----------------------------------------------------------------------

    def kill_everything_in(self, host: str) -> list[int]:
        pids = self.network.pids(host)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return pids

    def kill_host(self, host: str) -> list[int]:
        """SIGKILL to every process of the host at once (nginx, pbp-fcgi and
        its workers, pbp-notifyd): a machine that lost its power."""
        stack = self.hosts[host]
        pids = self.kill_everything_in(host)
        for process in stack.processes.values():
            process.wait()
        stack.processes.clear()
        self.down.add(host)
        return pids

    def start_host(self, host: str) -> None:
        """Starts (or restarts, after kill_host) the host's processes; its slot
        is the one it had, so its notifyd goes on from where it confirmed."""
        stack = self.hosts[host]
        stack.run_dir.mkdir(parents=True, exist_ok=True)
        for stale in stack.run_dir.glob("*.sock"):
            stale.unlink()   # left by a killed host; their presence would look like a start
        stack.start()   # stops what it started if it fails
        self.down.discard(host)

    restart_host = start_host

    def kill_notifyd(self, host: str) -> int:
        stack = self.hosts[host]
        pid = stack.pid("pbp-notifyd")
        stack.kill("pbp-notifyd")
        return pid

    def start_notifyd(self, host: str) -> None:
        self.hosts[host].start_notifyd()

    def restart_postgres(self) -> None:
        self.db.restart_postgres()

    # -- the balancer -----------------------------------------------------------------

    def start_balancer(self) -> None:
        tmp = self.balancer_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        servers = "\n".join(f"        server {self.network.addresses[h]}:{HOST_PORT} max_fails=1 fail_timeout=1s;"
                            for h in self.host_names)
        (self.balancer_dir / "nginx.conf").write_text(f"""# Generated by tools/pbpcluster.py: the load balancer.
user root;
worker_processes 1;
pid {self.balancer_dir}/nginx.pid;
error_log {self.balancer_dir}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    # $upstream_addr names the host (a list when nginx tried more than one);
    # X-Chaos-Client is the simulated browser (Tests/chaos), for host changes.
    log_format balancer '$msec $request_method $uri $status "$upstream_addr" "$upstream_status" "$http_x_chaos_client"';
    access_log {self.balancer_dir}/access.log balancer;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    # Round robin, no stickiness: consecutive requests of one client go to any host.
    upstream pbp_hosts {{
{servers}
        keepalive 256;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        client_max_body_size 2m;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_connect_timeout 2s;
        # Longer than a poll's timeout (the hosts' fastcgi_read_timeout is too).
        proxy_read_timeout 120s;
        # A host that is dead (or whose nginx answers 502: its pbp-fcgi is)
        # gets a request of a client once, then the next host does. Not on
        # 503: the hosts answer it while PostgreSQL restarts, and counted as
        # failures (max_fails) they would take every host out at once ("no
        # live upstreams", 502 for everything; measured: 535 failed requests
        # in one cluster chaos run, against none without).
        location / {{
            proxy_pass http://pbp_hosts;
        }}
        # A poll (a POST) only reads: when its host dies under it, it goes to
        # another host with the same cursor (nginx retries no POST unless told).
        location = /api/changes {{
            proxy_pass http://pbp_hosts;
            proxy_next_upstream error timeout http_502 non_idempotent;
        }}
    }}
}}
""")
        log = open(self.balancer_dir / "nginx.log", "ab")
        self.balancer = subprocess.Popen(
            ["nginx", "-c", str(self.balancer_dir / "nginx.conf"), "-p", str(self.balancer_dir), "-g", "daemon off;"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            if self.balancer.poll() is not None:
                raise StackError(f"the balancer exited; see {self.balancer_dir}/error.log")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/api/testtype?limit=1")
                status = connection.getresponse().status
                connection.close()
                if status == 200 or not set(self.host_names) - self.down:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise StackError("the balancer did not serve within 20 s")
            time.sleep(0.05)

    def upstreams(self) -> list[dict]:
        """The balancer's log, a dict a request: uri, status, hosts tried (in order) and client."""
        entries = []
        if not self.access_log.exists():
            return entries
        for line in self.access_log.read_text(errors="replace").splitlines():
            parts = line.split(" ", 4)
            if len(parts) < 5:
                continue
            quoted = parts[4].split('"')
            # "A, B" when nginx tried A, then B; "A : B" after an internal redirect.
            addresses = re.split(r", | : ", quoted[1])
            hosts = [self.host_of_address(a) for a in addresses if a and a != "-"]
            entries.append({"at": float(parts[0]), "method": parts[1], "uri": parts[2], "status": parts[3],
                            "hosts": [h for h in hosts if h], "client": quoted[5] if len(quoted) > 5 else "-"})
        return entries

    # -- the reaper ---------------------------------------------------------------------

    def start_reaper(self) -> None:
        self.reaper, self.reaper_pipe = start_reaper_process(Path(__file__), self.root)

    def stop_reaper(self) -> None:
        if self.reaper is not None and self.reaper_pipe is not None:
            stand_reaper_down(self.reaper, self.reaper_pipe)
        self.reaper, self.reaper_pipe = None, None


def reap(root: Path) -> int:
    """The cluster's owner died before stop(): every process under `root`
    (the hosts' and the balancer's, found by the folder in their command
    lines), PostgreSQL, then the namespaces and links it recorded."""
    if sys.stdin.buffer.read() == REAPER_STAND_DOWN:
        return 0
    for pid, cmdline in processes_under(root):
        if cmdline.startswith(b"postgres") or os.path.basename(cmdline.split(b"\0", 1)[0]) == b"postgres":
            continue   # pg_ctl stops PostgreSQL below
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    pg_data = root / "db" / "pg" / "data"
    if (pg_data / "postmaster.pid").exists():
        pg_ctl = [str(pg_bindir() / "pg_ctl"), "stop", "-m", "immediate", "-D", str(pg_data)]
        subprocess.run(["runuser", "-u", "postgres", "--", *pg_ctl], stdout=subprocess.DEVNULL)
    record = root / "network.json"
    if record.exists():
        time.sleep(0.2)   # the killed processes leave their namespaces
        remove_network(json.loads(record.read_text()))
    print(f"pbpcluster: its owner died; stopped the cluster in {root}", file=sys.stderr)
    return 3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "reap"])
    parser.add_argument("--root", type=Path)
    parser.add_argument("--bin-dir", type=Path)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    if args.command == "reap":
        return reap(args.root)
    if args.bin_dir is None:
        parser.error("run needs --bin-dir")
    root = args.root or Path(tempfile.mkdtemp(prefix="pbp-cluster-"))
    cluster = Cluster(root, args.bin_dir, hosts=args.hosts, balancer_port=args.port)
    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    cluster.start()
    print(f"PBP on {args.hosts} hosts behind {cluster.base_url}/ (logs in {root}; Ctrl-C stops it)")
    for host in cluster.host_names:
        print(f"  host {host}: {cluster.host_url(host)}  status (in its namespace) {cluster.hosts[host].status_url}/api/_status"
              f"  slot {cluster.slot(host)}")
    try:
        while not stopping:
            time.sleep(0.2)
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
