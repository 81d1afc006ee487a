#!/usr/bin/env python3
"""PBP's benchmark suite (issue 8): `make bench`.

Starts a stack of its own (release binaries, like `make run`, but in a
temporary folder on free loopback ports, so it can run beside `make run` and
`make test`), runs the benchmarks below with the project's load generator
(bench/loadgen/), prints a summary with the targets, and adds a dated
section at the top of bench/RESULTS.md.

  latency  one client: commit by a separate connection until the long-poll
           answer has arrived, 200 rounds
  fanout   N long-polls parked through nginx (1,000, 10,000, 19,000), one row
           inserted, 20 rounds: latency to each client, fan-out completion,
           misses, CPU per delivery, memory per parked poll, RSS of every
           process, PostgreSQL connections in use; then the same with every
           poll signed in (a bearer token of role pbp_user), size by size
  nchan    the same fan-out against Nchan (Debian's libnginx-mod-nchan,
           long-poll subscribers) in its own nginx: the reference
  crud     closed-loop GET one row, GET 100 rows, POST, PUT at 1, 16 and 64
           connections through nginx, and `pgbench -S -M prepared` at the
           same client counts on the same database as the ceiling; GET one
           row again with a token (verified, then SET LOCAL ROLE pbp_user and
           the claims, where anonymous switches to pbp_anon)
  intake   notifyd's intake of one 100,000-row transaction (notifyd_intake.py)
  slow     notifyd's RSS and ring bytes per event while 300,000 events flow to
           a subscriber that reads slowly (slow_subscriber.py)
  hostile  worker CPU per hostile long-poll (a cursor 65,000 events old, 256
           non-matching filters and other shapes) and the ring's bytes per
           event (hostile_poll.py)

How the stack is tuned here, as a deployment for 19,000 waiting browsers on
this 2-core machine would be (the defaults of `make run` are unchanged):
- nginx: worker_processes 2 (one per core); worker_rlimit_nofile 20000 (the
  hard limit per process here) and worker_connections 19900, because each
  parked poll holds two connections in nginx (browser + FastCGI) and 19,000
  polls over two workers is ~19,000 per worker; `listen ... reuseport` so the
  kernel spreads connections evenly over the workers (without it one worker
  may take most of a burst and run out of connections), backlog 4096
  (somaxconn) for the connection ramp. Access log on, unbuffered, as Debian's
  default; the Nchan nginx is configured the same way.
- pbp-fcgi: --workers = cores, --threads 4 (the defaults); the pool's
  PostgreSQL connections are at most workers x threads.
- Polls ask for a 55 s timeout (pbp-fcgi's --max-poll-timeout default;
  nginx's fastcgi_read_timeout is 65 s); no round comes near it.
- pbp-fcgi and nginx are restarted before each fan-out size so that memory per
  parked poll is measured from a fresh baseline.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "Tests" / "integration"))
sys.path.insert(0, str(REPO / "bench"))

from pbpstack import Stack, StackError, free_port  # noqa: E402
import mint_token  # noqa: E402

BENCHMARKS = ("latency", "fanout", "nchan", "crud", "intake", "slow", "hostile")
NCHAN_MODULE = Path("/usr/lib/nginx/modules/ngx_nchan_module.so")


class BenchError(RuntimeError):
    pass


class BenchTimeout(BaseException):
    pass


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the load generator ------------------------------------------------------

current_loadgen: subprocess.Popen | None = None


def run_loadgen(loadgen: Path, arguments: list[str], timeout: float) -> dict:
    """Runs the load generator, its progress on our stderr; returns its JSON.
    A failing run still returns its JSON (with "ok": false) when it printed
    one; otherwise {"ok": false, "errors": [...]}. Never hides a failure."""
    global current_loadgen
    command = [str(loadgen), *map(str, arguments)]
    log("$ " + " ".join(command))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    current_loadgen = process
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        return {"ok": False, "errors": [f"loadgen did not finish within {timeout:.0f} s (killed)"]}
    finally:
        if process.poll() is None:
            kill_group(process)
        current_loadgen = None
    try:
        result = json.loads(output.strip().splitlines()[-1]) if output.strip() else None
    except json.JSONDecodeError:
        result = None
    if result is None:
        return {"ok": False, "errors": [f"loadgen exited with {process.returncode} and no result"]}
    if process.returncode != 0:
        result["ok"] = False
        result.setdefault("errors", []).append(f"loadgen exited with {process.returncode}")
    return result


def kill_group(process: subprocess.Popen) -> None:
    """The load generator and its forked workers (its own session)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


# -- processes we watch ---------------------------------------------------------

def postmaster_pid(stack: Stack) -> int:
    return int((stack.pg_data / "postmaster.pid").read_text().split()[0])


def watch_arguments(stack: Stack) -> list[str]:
    return ["--watch", f"nginx={stack.pid('nginx')}", "--watch", f"pbp-fcgi={stack.pid('pbp-fcgi')}",
            "--watch", f"notifyd={stack.pid('pbp-notifyd')}", "--watch", f"postgres={postmaster_pid(stack)}",
            "--watch", "loadgen=self"]


class LogWatch:
    """Warnings and errors that processes logged while a benchmark ran."""

    PATTERN = re.compile(r"\[(alert|crit|emerg|error)\]|\berror\b|\bfatal\b|\bwarning\b", re.IGNORECASE)

    def __init__(self, paths: list[Path]):
        self.marks = {path: path.stat().st_size if path.exists() else 0 for path in paths}

    def lines(self) -> list[str]:
        found = []
        for path, mark in self.marks.items():
            if not path.exists():
                continue
            with open(path, "rb") as file:
                file.seek(mark)
                for line in file.read().decode(errors="replace").splitlines():
                    if self.PATTERN.search(line):
                        found.append(f"{path.name}: {line.strip()[:300]}")
        return found


def stack_logs(stack: Stack) -> list[Path]:
    return [stack.nginx_dir / "error.log", stack.root / "pbp-fcgi.log", stack.root / "pbp-notifyd.log",
            stack.pg_dir / "postgresql.log"]


def nginx_workers_for(polls: int, nofile: int) -> int:
    """One nginx worker per core (2), or more when a worker could not hold
    its share: each parked poll is two connections in PBP's nginx (browser
    and FastCGI), and reuseport spreads them only about evenly, and a
    re-poll burst briefly holds more, so a worker is planned at 90% of its
    descriptors (less 500 for listeners and logs). 19,000 polls need 3
    workers under the 20,000-descriptor limit here (with 2, nginx logs
    "worker_connections are not enough" and drops clients)."""
    budget = int(0.9 * (nofile - 500))
    return max(2, -(-2 * polls // budget))


def restart_frontends(stack: Stack) -> None:
    """Fresh pbp-fcgi and nginx processes: a clean memory baseline."""
    stack.stop_process("nginx")
    stack.stop_process("pbp-fcgi")
    if stack.fcgi_socket.exists():
        stack.fcgi_socket.unlink()
    stack.start_fcgi()
    stack.start_nginx()
    stack.wait_until_serving()


# -- Nchan ------------------------------------------------------------------------

class NchanServer:
    """nginx with the Nchan module: long-poll subscribers on /sub, a publisher
    on /pub, nchan_stub_status on /nchan_status; one channel. Configured as
    the PBP stack's nginx is (workers, descriptors, listen, access log)."""

    def __init__(self, root: Path, worker_connections: int, access_log: str, workers: int = 2):
        self.root = root
        self.workers = workers
        self.port = free_port()
        self.worker_connections = worker_connections
        self.access_log = access_log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        if not NCHAN_MODULE.exists():
            raise BenchError(f"{NCHAN_MODULE} is missing: install libnginx-mod-nchan (make bench-deps)")
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        user_line = "user root;" if os.geteuid() == 0 else ""
        access_log = {"on": f"access_log {self.root}/access.log pbp;",
                      "buffered": f"access_log {self.root}/access.log pbp buffer=64k flush=1s;",
                      "off": "access_log off;"}[self.access_log]
        tmp = self.root / "tmp"
        (self.root / "nginx.conf").write_text(f"""# Generated by bench/run_bench.py: the Nchan reference.
load_module {NCHAN_MODULE};
{user_line}
worker_processes {self.workers};
worker_rlimit_nofile 20000;
pid {self.root}/nginx.pid;
error_log {self.root}/error.log warn;
events {{ worker_connections {self.worker_connections}; }}
http {{
    log_format pbp '$remote_addr [$time_local] "$request" $status $body_bytes_sent $request_time $msec';
    {access_log}
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{self.port} reuseport backlog=4096;
        location = /sub {{
            nchan_subscriber longpoll;
            nchan_channel_id bench;
            nchan_subscriber_first_message newest;
            nchan_subscriber_timeout 55s;
        }}
        location = /pub {{
            nchan_publisher;
            nchan_channel_id bench;
        }}
        location = /nchan_status {{
            nchan_stub_status;
        }}
    }}
}}
""")
        self.log_file = open(self.root / "nginx.out", "ab")
        self.process = subprocess.Popen(
            ["nginx", "-c", str(self.root / "nginx.conf"), "-p", str(self.root), "-g", "daemon off;"],
            stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 15
        import http.client
        while True:
            if self.process.poll() is not None:
                raise BenchError(f"the Nchan nginx exited with {self.process.returncode}; see {self.root}/nginx.out")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/nchan_status")
                if connection.getresponse().status == 200:
                    connection.close()
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BenchError("the Nchan nginx did not answer within 15 s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None


# -- pgbench ----------------------------------------------------------------------

def pgbench_init(stack: Stack, scale: int) -> float:
    began = time.monotonic()
    subprocess.run([str(stack.pg_bin / "pgbench"), "-i", "-s", str(scale), "-q", "pbp"], env=stack.pg_env(),
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    return time.monotonic() - began


# The statements POST and PUT end in, run by pgbench at the same client
# counts: the ceiling PostgreSQL itself sets for PBP's writes (each commit
# runs the watched table's triggers and a pg_notify). Ids for the UPDATE are
# drawn from the rows that exist, as the load generator's PUTs are.
WRITE_SCRIPTS = {
    "insert": "insert into testtype (val) values ('pgbench insert');\n",
    "update": "\\set id random(:lo, :hi)\nupdate testtype set val = 'pgbench update' where id = :id;\n",
}


def pgbench_run(stack: Stack, clients: int, duration: float, script: str | None = None,
                defines: dict[str, int] | None = None, without_triggers: bool = False) -> dict:
    """`pgbench -S -M prepared` (select by key), or a custom script (-f);
    `without_triggers` runs it with session_replication_role = replica, so
    that no trigger fires (the table's mtime and PBP's change events): what
    the same statement costs PostgreSQL alone."""
    if script is None:
        workload = ["-S"]
    else:
        path = stack.root / f"pgbench-{script}.sql"
        path.write_text(WRITE_SCRIPTS[script])
        workload = ["-f", str(path)] + [f"-D{name}={value}" for name, value in (defines or {}).items()]
    command = [str(stack.pg_bin / "pgbench"), *workload, "-M", "prepared", "-n", "-c", str(clients),
               "-j", str(min(clients, 2)), "-T", str(int(round(duration))), "pbp"]
    log("$ " + " ".join(command))
    env = stack.pg_env()
    if without_triggers:
        env["PGOPTIONS"] = env.get("PGOPTIONS", "") + " -c session_replication_role=replica"
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=duration + 120)
    text = result.stdout + result.stderr
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", text)
    latency = re.search(r"latency average = ([0-9.]+) ms", text)
    failed = re.search(r"number of failed transactions: (\d+)", text)
    out = {"clients": clients, "threads": min(clients, 2), "duration_s": duration,
           "ok": result.returncode == 0 and tps is not None and (failed is None or failed.group(1) == "0"),
           "tps": float(tps.group(1)) if tps else None,
           "latency_avg_ms": float(latency.group(1)) if latency else None,
           "failed": int(failed.group(1)) if failed else None}
    if not out["ok"]:
        out["errors"] = [text.strip()[-500:]]
        log(f"ERROR: pgbench failed: {text.strip()[-500:]}")
    return out


# -- machine and version facts ------------------------------------------------------

def command_output(command: list[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=20)
        return (result.stdout + result.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def machine_facts(stack: Stack | None) -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
    meminfo = Path("/proc/meminfo").read_text()
    mem_kb = int(re.search(r"MemTotal:\s*(\d+)", meminfo).group(1))
    debian = Path("/etc/debian_version").read_text().strip() if Path("/etc/debian_version").exists() else "?"
    nginx = re.search(r"nginx/([0-9.]+)", command_output(["nginx", "-v"]))
    postgres = re.search(r"\) ([0-9.]+)", command_output([str(stack.pg_bin / "postgres"), "--version"]) if stack else "")
    nchan = command_output(["dpkg-query", "-W", "-f=${Version}", "libnginx-mod-nchan"])
    return {"nproc": os.cpu_count(), "cpu": model.group(1).strip() if model else "?",
            "memory_gib": round(mem_kb / 1024 / 1024, 1), "kernel": platform.release(), "debian": debian,
            "nginx": nginx.group(1) if nginx else "?", "postgres": postgres.group(1) if postgres else "?",
            "nchan": nchan, "loadavg_start": os.getloadavg()}


def fsync_probe(directory: Path, seconds: float = 1.0) -> dict:
    """8 kB write + fdatasync in a loop for about a second, in the cluster's
    filesystem: a notifying commit waits for one such flush (and they go one
    at a time), so POST and PUT rates cannot beat 1 / this on any server.
    Recorded at the start and the end of a run because a shared machine's
    disk varies (137 us measured here on a quiet day; milliseconds when other
    jobs write)."""
    path = directory / "fsync-probe"
    block = os.urandom(8192)
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end and len(times) < 100_000:
            began = time.perf_counter()
            os.pwrite(fd, block, 0)
            os.fdatasync(fd)
            times.append(time.perf_counter() - began)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    times.sort()
    return {"count": len(times), "p50_us": times[len(times) // 2] * 1e6,
            "p99_us": times[min(len(times) - 1, int(len(times) * 0.99))] * 1e6,
            "mean_us": sum(times) / len(times) * 1e6}


def git_commit() -> str:
    commit = command_output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = command_output(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    return commit + ("+dirty" if dirty else "")


def write_ceilings(stack: Stack, clients: int, duration: float) -> dict:
    """pgbench's INSERT and UPDATE of POST and PUT, with the table's triggers
    (the ceiling PostgreSQL sets for PBP's writes) and without any (what
    PostgreSQL alone costs)."""
    lo, hi = (int(v) for v in stack.psql("select min(id), max(id) from testtype").split("|"))
    ids = {"lo": lo, "hi": hi}
    return {"pgbench_insert": pgbench_run(stack, clients, duration, "insert"),
            "pgbench_update": pgbench_run(stack, clients, duration, "update", ids),
            "pgbench_insert_bare": pgbench_run(stack, clients, duration, "insert", without_triggers=True),
            "pgbench_update_bare": pgbench_run(stack, clients, duration, "update", ids, without_triggers=True)}


# -- the run -------------------------------------------------------------------------

def parse_list(text: str, kind=int) -> list:
    return [kind(item) for item in text.split(",") if item.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", type=Path, required=True, help="release binaries (swift build -c release --show-bin-path)")
    parser.add_argument("--loadgen", type=Path, default=REPO / ".build-bench" / "loadgen")
    parser.add_argument("--only", default=os.environ.get("BENCH", ""),
                        help=f"comma-separated subset of {','.join(BENCHMARKS)} (default: all; env BENCH)")
    parser.add_argument("--fanout-sizes", default="1000,10000,19000")
    parser.add_argument("--rounds", type=int, default=20, help="fan-out rounds per size")
    parser.add_argument("--latency-rounds", type=int, default=200)
    parser.add_argument("--crud-clients", default="1,16,64")
    parser.add_argument("--crud-ops", default="get,list,post,put")
    parser.add_argument("--crud-duration", type=float, default=5.0, help="seconds measured per CRUD run (and pgbench -T)")
    parser.add_argument("--crud-warmup", type=float, default=1.0)
    parser.add_argument("--pgbench-scale", type=int, default=10)
    parser.add_argument("--no-write-ceiling", action="store_true",
                        help="skip pgbench with POST's INSERT and PUT's UPDATE (the writes' own ceiling)")
    parser.add_argument("--intake-rows", type=int, default=100_000)
    parser.add_argument("--intake-rounds", type=int, default=3)
    parser.add_argument("--slow-rows", type=int, default=300_000, help="slow subscriber: events that flow")
    parser.add_argument("--hostile-polls", type=int, default=10, help="hostile: polls per shape")
    parser.add_argument("--fcgi-workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--fcgi-threads", type=int, default=4)
    parser.add_argument("--loadgen-procs", type=int, default=2, help="fan-out: load generator processes")
    parser.add_argument("--ramp", type=float, default=10.0, help="fan-out: connections opened per ms")
    parser.add_argument("--nginx-access-log", choices=["on", "buffered", "off"], default="on")
    parser.add_argument("--nginx-workers", type=int, default=0,
                        help="nginx worker processes (default: 2, one per core, or more for a fan-out whose "
                             "2 connections per poll do not fit one worker's descriptor limit)")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "RESULTS.md")
    parser.add_argument("--no-record", action="store_true", help="do not add a section to RESULTS.md")
    parser.add_argument("--command", default=None, help="the command line to record (make passes it)")
    parser.add_argument("--time-limit", type=float, default=1500, help="seconds for the whole run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary stack folder")
    parser.add_argument("--source", choices=["notify", "wal"], default=os.environ.get("SOURCE") or "notify",
                        help="the change source of the stack measured (SOURCE=wal for make bench)")
    parser.add_argument("--other-source", choices=["notify", "wal", "none"], default=None,
                        help="then, in the same run, a stack on this source measures what the sources are "
                             "compared by (latency, fan-out to 10,000, POST and PUT at 16, intake); "
                             "default: the other source")
    args = parser.parse_args()

    if args.other_source is None:
        args.other_source = "wal" if args.source == "notify" else "notify"
    selected = parse_list(args.only, str) if args.only else list(BENCHMARKS)
    unknown = set(selected) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}; choose from {', '.join(BENCHMARKS)}")
    if not args.loadgen.exists():
        parser.error(f"{args.loadgen} is missing: `make bench` builds it")
    fanout_sizes = parse_list(args.fanout_sizes)
    crud_clients = parse_list(args.crud_clients)
    crud_ops = parse_list(args.crud_ops, str)
    command = args.command or " ".join(["bench/run_bench.py", *sys.argv[1:]])

    # Every process we start inherits the hard descriptor limit (20000 here).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    def on_alarm(signum, frame):
        raise BenchTimeout(f"the whole run exceeded --time-limit {args.time_limit:.0f} s")

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    # Even when started with SIGINT ignored (a background job), Ctrl-C stops it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.alarm(int(args.time_limit))

    # As docs/deploy.md tunes a deployment: the kernel caps the FastCGI
    # socket's backlog (16384) at somaxconn, and 10,000+ clients polling again
    # at once overflow Debian's 4096 (nginx then answers 503). Restored at the end.
    somaxconn_path = Path("/proc/sys/net/core/somaxconn")
    somaxconn_before = int(somaxconn_path.read_text())
    if somaxconn_before < 16384:
        try:
            somaxconn_path.write_text("16384")
        except OSError as error:
            log(f"cannot raise net.core.somaxconn ({error}); it stays {somaxconn_before}")

    root = Path(tempfile.mkdtemp(prefix="pbp-bench-"))
    os.chmod(root, 0o755)
    workers, threads = args.fcgi_workers, args.fcgi_threads
    stack = Stack(root / "stack", free_port(), args.bin_dir, log=log, workers=workers, threads=threads,
                  nginx_worker_processes=args.nginx_workers or 2, nginx_worker_connections=19900, nginx_rlimit_nofile=hard,
                  nginx_listen_options="reuseport backlog=4096", nginx_access_log=args.nginx_access_log,
                  source=args.source)
    nchan: NchanServer | None = None
    began = time.time()
    results: dict = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                     "commit": git_commit(), "command": command, "selected": selected,
                     "config": {"source": args.source, "other_source": args.other_source,
                                "fcgi_workers": workers, "fcgi_threads": threads, "pool_connections": workers * threads,
                                "nginx_worker_processes": args.nginx_workers or 2, "nginx_worker_connections": 19900,
                                "nginx_rlimit_nofile": hard, "nginx_access_log": args.nginx_access_log,
                                "loadgen_procs": args.loadgen_procs, "ramp_per_ms": args.ramp,
                                "poll_timeout_s": 55, "fanout_rounds": args.rounds,
                                "crud_duration_s": args.crud_duration, "crud_warmup_s": args.crud_warmup,
                                "pgbench_scale": args.pgbench_scale,
                                "somaxconn": int(somaxconn_path.read_text())},
                     "problems": []}
    failed = interrupted = False
    try:
        log(f"starting the stack in {root} (pbp-fcgi {workers} workers x {threads} threads)")
        stack.start()
        results["machine"] = machine_facts(stack)
        results["machine"]["fdatasync_start"] = fsync_probe(stack.root)
        superuser = f"host={stack.pg_dir} dbname=pbp user=postgres connect_timeout=5"
        stack.psql("insert into testtype (val) select 'seed ' || n from generate_series(1, 1000) n")
        common = ["--port", stack.port, "--status-port", stack.status_port, "--pg", superuser]
        # One user's token for the signed-in runs, valid well past the run's time limit.
        token = mint_token.mint(mint_token.read_secret(stack.jwt_key_path), sub="bench", role="pbp_user",
                                ttl=int(args.time_limit) + 600)
        signed_in = ["--token", token]

        def note_logs(name: str, watch: LogWatch) -> None:
            lines = watch.lines()
            if lines:
                results["problems"].append({"benchmark": name, "log_lines": len(lines), "first": lines[:5]})
                log(f"WARNING: {len(lines)} warning/error lines in the logs during {name}: {lines[:3]}")

        if "latency" in selected:
            watch = LogWatch(stack_logs(stack))
            results["latency"] = run_loadgen(args.loadgen, ["latency", *common, "--rounds", args.latency_rounds,
                                                            "--park-timeout", 10],
                                             timeout=60 + args.latency_rounds * 1.5)
            note_logs("latency", watch)

        if "fanout" in selected or "nchan" in selected:
            results["fanout"], results["fanout_token"], results["nchan"] = {}, {}, {}
            for size in fanout_sizes:
                nginx_workers = args.nginx_workers or nginx_workers_for(size, hard)
                stack.nginx_worker_processes = nginx_workers
                timeout = 150 + args.rounds * (3 + size / 1500)
                fanout_args = ["--connections", size, "--rounds", args.rounds, "--procs", args.loadgen_procs,
                               "--ramp", args.ramp, "--poll-timeout", 55]
                if "fanout" in selected:
                    restart_frontends(stack)
                    watch = LogWatch(stack_logs(stack))
                    results["fanout"][str(size)] = run_loadgen(
                        args.loadgen, ["fanout", *common, *fanout_args, *watch_arguments(stack)], timeout=timeout)
                    results["fanout"][str(size)]["nginx_workers"] = nginx_workers
                    note_logs(f"fanout {size}", watch)
                    # The same, signed in, right after: one size's pair is measured side by side.
                    restart_frontends(stack)
                    watch = LogWatch(stack_logs(stack))
                    results["fanout_token"][str(size)] = run_loadgen(
                        args.loadgen, ["fanout", *common, *fanout_args, *signed_in, *watch_arguments(stack)],
                        timeout=timeout)
                    results["fanout_token"][str(size)]["nginx_workers"] = nginx_workers
                    note_logs(f"fanout {size} with tokens", watch)
                if "nchan" in selected:
                    nchan = NchanServer(root / f"nchan-{size}", 19900, args.nginx_access_log, nginx_workers)
                    nchan.start()
                    watch = LogWatch([nchan.root / "error.log"])
                    # nchan_stub_status counts a subscriber as soon as its
                    # worker has it; 100 ms more for the channel's owner to
                    # hear of it (interprocess) before publishing.
                    results["nchan"][str(size)] = run_loadgen(
                        args.loadgen, ["fanout", "--target", "nchan", "--port", nchan.port, *fanout_args,
                                       "--settle", 0.1, "--watch", f"nginx={nchan.process.pid}",
                                       "--watch", "loadgen=self"], timeout=timeout)
                    results["nchan"][str(size)]["nginx_workers"] = nginx_workers
                    note_logs(f"nchan {size}", watch)
                    nchan.stop()
                    nchan = None
            stack.nginx_worker_processes = args.nginx_workers or 2
            if "fanout" in selected:
                restart_frontends(stack)

        if "crud" in selected:
            log(f"pgbench -i -s {args.pgbench_scale} in database pbp")
            results["pgbench_init_s"] = pgbench_init(stack, args.pgbench_scale)
            crud = results["crud"] = {}
            for clients in crud_clients:
                row = crud[str(clients)] = {}
                watch = LogWatch(stack_logs(stack))
                for op in crud_ops:
                    row[op] = run_loadgen(args.loadgen, [
                        "closed-loop", *common, "--connections", clients, "--op", op,
                        "--duration", args.crud_duration, "--warmup", args.crud_warmup, *watch_arguments(stack)],
                        timeout=args.crud_duration + args.crud_warmup + 60)
                if "get" in crud_ops:
                    row["get_token"] = run_loadgen(args.loadgen, [
                        "closed-loop", *common, "--connections", clients, "--op", "get", *signed_in,
                        "--duration", args.crud_duration, "--warmup", args.crud_warmup, *watch_arguments(stack)],
                        timeout=args.crud_duration + args.crud_warmup + 60)
                row["pgbench"] = pgbench_run(stack, clients, args.crud_duration)
                if not args.no_write_ceiling:
                    row.update(write_ceilings(stack, clients, args.crud_duration))
                note_logs(f"crud {clients}", watch)

        def run_part(name: str, label: str, measure, into: dict | None = None) -> None:
            """A part measured by a script of its own (bench/<part>.py): its failure is reported, never hidden."""
            target = results if into is None else into
            watch = LogWatch(stack_logs(stack))
            try:
                target[name] = {"ok": True, **measure()}
            except Exception as error:  # reported, never hidden
                target[name] = {"ok": False, "errors": [repr(error)]}
                log(f"ERROR: {label}: {error!r}")
            note_logs(name if into is None else label, watch)

        def intake() -> dict:
            import notifyd_intake
            rounds = notifyd_intake.measure(stack, args.intake_rows, args.intake_rounds, log=log)
            rates = sorted(r["events_per_s"] for r in rounds)
            return {"rows": args.intake_rows, "rounds": rounds, "median_events_per_s": rates[len(rates) // 2]}

        if "intake" in selected:
            run_part("intake", "notifyd intake", intake)

        if "slow" in selected:
            import slow_subscriber
            run_part("slow", "slow subscriber", lambda: slow_subscriber.measure(stack, args.slow_rows, log=log))

        if "hostile" in selected:
            import hostile_poll
            run_part("hostile", "hostile polls", lambda: hostile_poll.measure(stack, polls=args.hostile_polls, log=log))

        compared = [part for part in ("latency", "fanout", "crud", "intake") if part in selected]
        if args.other_source != "none" and args.other_source != args.source and compared:
            # Issue 16: the sources side by side, in the same run. The first
            # stack stops (its cluster stays in its folder) and one on the
            # other source takes the machine.
            other = results["other_source"] = {"source": args.other_source}
            size = 10_000 if 10_000 in fanout_sizes else max(fanout_sizes)
            clients = 16 if 16 in crud_clients else max(crud_clients)
            log(f"the {args.other_source} source, same run: {', '.join(compared)}")
            stack.stop()
            stack = Stack(root / f"stack-{args.other_source}", free_port(), args.bin_dir, log=log, workers=workers,
                          threads=threads, nginx_worker_processes=nginx_workers_for(size, hard),
                          nginx_worker_connections=19900, nginx_rlimit_nofile=hard,
                          nginx_listen_options="reuseport backlog=4096", nginx_access_log=args.nginx_access_log,
                          source=args.other_source)
            stack.start()
            stack.psql("insert into testtype (val) select 'seed ' || n from generate_series(1, 1000) n")
            common = ["--port", stack.port, "--status-port", stack.status_port,
                      "--pg", f"host={stack.pg_dir} dbname=pbp user=postgres connect_timeout=5"]
            watch = LogWatch(stack_logs(stack))
            if "latency" in compared:
                other["latency"] = run_loadgen(args.loadgen, ["latency", *common, "--rounds", args.latency_rounds,
                                                              "--park-timeout", 10],
                                               timeout=60 + args.latency_rounds * 1.5)
            if "fanout" in compared:
                restart_frontends(stack)
                other["fanout"] = {str(size): run_loadgen(args.loadgen, [
                    "fanout", *common, "--connections", size, "--rounds", args.rounds, "--procs", args.loadgen_procs,
                    "--ramp", args.ramp, "--poll-timeout", 55, *watch_arguments(stack)],
                    timeout=150 + args.rounds * (3 + size / 1500))}
            if "crud" in compared:
                row = other["crud"] = {str(clients): {}}
                row = row[str(clients)]
                for op in [op for op in crud_ops if op in ("post", "put")]:
                    row[op] = run_loadgen(args.loadgen, [
                        "closed-loop", *common, "--connections", clients, "--op", op,
                        "--duration", args.crud_duration, "--warmup", args.crud_warmup, *watch_arguments(stack)],
                        timeout=args.crud_duration + args.crud_warmup + 60)
                if not args.no_write_ceiling:
                    row.update(write_ceilings(stack, clients, args.crud_duration))
            note_logs(f"{args.other_source} source", watch)
            if "intake" in compared:
                run_part("intake", f"notifyd intake on {args.other_source}", intake, into=other)
    except (StackError, BenchError, BenchTimeout, subprocess.SubprocessError, OSError) as error:
        failed = True
        results["problems"].append({"fatal": repr(error)})
        log(f"ERROR: {error}")
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        failed = interrupted = True
    finally:
        signal.alarm(0)
        if int(somaxconn_path.read_text()) != somaxconn_before:
            somaxconn_path.write_text(str(somaxconn_before))
        if current_loadgen is not None and current_loadgen.poll() is None:
            kill_group(current_loadgen)
        if nchan is not None:
            nchan.stop()
        stack.stop()
        results["duration_s"] = round(time.time() - began, 1)
        if "machine" in results:
            results["machine"]["loadavg_end"] = os.getloadavg()
            try:
                results["machine"]["fdatasync_end"] = fsync_probe(root)
            except OSError as error:
                log(f"fdatasync probe: {error}")
        if not failed and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            log(f"the stack's folder (logs) is kept in {root}")

    if interrupted:
        return 130
    from report import benchmark_errors, render, targets, warnings  # noqa: E402  (bench/report.py)
    checks = targets(results)
    results["targets"] = checks
    results["warnings"] = warnings(results)
    out_dir = REPO / ".build-bench"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "last-results.json").write_text(json.dumps(results, indent=1))
    section = render(results, checks)
    print(section, flush=True)
    if not args.no_record and not failed:
        record(args.results, section)
        log(f"added to {args.results.relative_to(REPO) if args.results.is_relative_to(REPO) else args.results}; "
            f"raw figures in .build-bench/last-results.json")
    # A missed target is a figure, not a failure; an error (a lost delivery,
    # a non-2xx answer, a crash, a timeout) fails the run.
    errors = benchmark_errors(results)
    if errors:
        log(f"ERRORS in this run ({len(errors)}); see the section above")
    return 1 if failed or errors else 0


def record(path: Path, section: str) -> None:
    """A new section at the top, below the file's title and preamble."""
    text = path.read_text() if path.exists() else "# Benchmark results\n\nNewest first.\n"
    index = text.find("\n## ")
    if index < 0:
        text = text.rstrip() + "\n\n" + section.strip() + "\n"
    else:
        text = text[:index + 1] + section.strip() + "\n\n" + text[index + 1:]
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
