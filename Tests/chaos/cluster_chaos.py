#!/usr/bin/env python3
"""The convergence harness (chaos.py) against several app hosts (issue 19).

tools/pbpcluster.py starts one PostgreSQL and three hosts (nginx, pbp-fcgi,
pbp-notifyd --source wal on a slot of its own), each in a network namespace
with its own address, behind a round-robin balancer nginx with no
stickiness. chaos.py's clients (the page's own modules under Node) and
writers go through the balancer, so that consecutive polls of one client
land on different hosts; the faults are those of a site with several hosts:

  host_kill     SIGKILL to every process of one host (a lost machine); it
                starts again 1-4 s later and catches up from its slot
  pg_restart    PostgreSQL restarts under every host at once
  notifyd_kill  kill -9 of one host's pbp-notifyd, started again 0.1-2.5 s later

plus chaos.py's client_drop, client_restart, truncates and bursts. The report
(test-artifacts/chaos/cluster-report-seedN.json) has chaos.py's (resets by
the fault before them, drift, convergence) and `hosts`: the polls the
balancer sent to each host, how many polls landed on another host than the
same client's previous one, and how many it retried on another host because
theirs died under them (from its access log: $upstream_addr and the
browser's X-Chaos-Client header). No fault may reset a client: every host
holds the same cursors.

  python Tests/chaos/cluster_chaos.py --bin-dir "$(swift build -c release --show-bin-path)" \\
      --clients 300 --duration 120
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tools"))

import chaos  # noqa: E402
import mint_token  # noqa: E402
from pbpcluster import Cluster  # noqa: E402

CLUSTER_FAULTS = ["host_kill", "pg_restart", "notifyd_kill"]
FAULT_KINDS = CLUSTER_FAULTS + ["client_drop", "client_restart"]


@dataclass
class ClusterConfig(chaos.Config):
    hosts: int = 3

    def replay_command(self) -> str:
        return (f"python Tests/chaos/cluster_chaos.py --bin-dir {self.bin_dir} --seed {self.seed} "
                f"--clients {self.clients} --duration {self.duration:g} --faults {','.join(self.faults)} "
                f"--fault-interval {self.fault_interval:g} --write-rate {self.write_rate:g} --hosts {self.hosts}")


class BalancedStack:
    """What chaos.Harness uses of a Stack, for a cluster: the balancer's port
    (clients and API writers go through it), the database, the key."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.port = cluster.port
        self.pg_dir = cluster.pg_dir
        self.jwt_key_path = cluster.jwt_key_path
        self.root = cluster.root
        self.processes: dict = {}   # the hosts' are checked in stack_health

    def psql(self, sql: str) -> str:
        return self.cluster.psql(sql)


class ClusterHarness(chaos.Harness):
    def start_stack(self) -> None:
        config = self.config
        root = Path(tempfile.mkdtemp(prefix="pbp-cluster-chaos-"))
        os.chmod(root, 0o755)
        self.cluster = Cluster(root, config.bin_dir, hosts=config.hosts, log=lambda m: None,
                               workers=config.workers, threads=config.threads,
                               extra_fcgi_args=["--tables", ",".join(chaos.TABLES)])
        self.cluster.start()
        self.stack = BalancedStack(self.cluster)
        self.stack.psql(chaos.SETUP_SQL)
        secret = mint_token.read_secret(self.cluster.jwt_key_path)
        ttl = int(config.duration + config.converge_timeout * 2 + 600)
        self.tokens = {user: mint_token.mint(secret, sub=user, role="pbp_user", ttl=ttl) for user in chaos.USERS}

    def stop_stack(self, artifacts: Path) -> None:
        cluster = self.cluster
        self.host_report = self.count_host_changes()
        cluster.stop()
        logs = artifacts / f"cluster-logs-seed{self.config.seed}"
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True, exist_ok=True)
        for log in list(cluster.root.glob("*/*.log")) + list(cluster.root.glob("*/nginx/*.log")) + \
                [cluster.pg_dir / "postgresql.log"]:
            if log.exists() and log.name != "access.log":
                shutil.copy(log, logs / f"{log.parent.name}-{log.name}")
        if not self.config.keep:
            shutil.rmtree(cluster.root, ignore_errors=True)
        self.logs_dir = logs

    async def run_fault(self, planned: chaos.Planned) -> None:
        if planned.kind not in CLUSTER_FAULTS:
            return await super().run_fault(planned)
        rng = random.Random(planned.seed)
        cluster = self.cluster
        started = chaos.now_ms()
        detail = ""
        try:
            up = [h for h in cluster.host_names if h not in cluster.down]
            if planned.kind == "host_kill":
                victim = rng.choice(up)
                down = rng.uniform(1.0, 4.0)
                pids = await asyncio.to_thread(cluster.kill_host, victim)
                await asyncio.sleep(down)
                await asyncio.to_thread(cluster.restart_host, victim)
                detail = f"host {victim}: {len(pids)} processes killed, down {down:.2f}s"
            elif planned.kind == "notifyd_kill":
                victim = rng.choice(up)
                down = rng.uniform(0.1, 2.5)
                pid = await asyncio.to_thread(cluster.kill_notifyd, victim)
                await asyncio.sleep(down)
                await asyncio.to_thread(cluster.start_notifyd, victim)
                detail = f"host {victim}: notifyd {pid} killed, down {down:.2f}s"
            elif planned.kind == "pg_restart":
                await asyncio.to_thread(cluster.restart_postgres)
        except Exception as error:
            detail = f"FAILED: {type(error).__name__}: {error}"
            self.notes.append(f"fault {planned.kind} at {self.rel(started):.1f}s failed: {error}")
        entry = {"kind": planned.kind, "at": round(self.rel(started), 3),
                 "took": round((chaos.now_ms() - started) / 1000, 3), "detail": detail, "start_ms": started}
        self.fault_log.append(entry)
        self.say(f"fault {planned.kind} ({entry['took']:.2f}s) {detail}")

    def count_host_changes(self) -> dict:
        """From the balancer's log: polls per host, polls on another host than
        the same browser's previous poll, and polls retried on another host."""
        last: dict[str, str] = {}
        per_host, changed, retried, polls = Counter(), 0, 0, 0
        for entry in self.cluster.upstreams():
            if entry["uri"] != "/api/changes" or not entry["hosts"] or entry["client"] in ("", "-"):
                continue
            polls += 1
            served = entry["hosts"][-1]
            per_host[served] += 1
            if len(set(entry["hosts"])) > 1:
                retried += 1
            previous = last.get(entry["client"])
            if previous is not None and previous != served:
                changed += 1
            last[entry["client"]] = served
        return {"polls": polls, "polls_by_host": dict(sorted(per_host.items())), "changed_host": changed,
                "retried_on_another_host": retried}

    def stack_health(self) -> dict:
        problems = list(self.deaths)
        killed_hosts = {f["detail"].split(":")[0].split()[-1] for f in self.fault_log if f["kind"] == "host_kill"
                        and not f["detail"].startswith("FAILED")}
        unexpected = []
        for name, host in self.cluster.hosts.items():
            for process in ("pbp-notifyd", "pbp-fcgi", "nginx"):
                running = host.processes.get(process)
                if running is None or running.poll() is not None:
                    problems.append(f"host {name}: {process} is not running at the end")
            log = host.root / "pbp-fcgi.log"
            if log.exists():
                for line in log.read_text(errors="replace").splitlines():
                    m = re.search(r"worker (\d+) (killed by signal \d+|exited with \d+)", line)
                    if m and not ("old worker" in line and m.group(2) == "exited with 0"):
                        unexpected.append(f"host {name}: {line.strip()}")
        if unexpected:
            problems.append(f"{len(unexpected)} workers died that the harness did not kill")
        return {"problems": problems, "unexpected_worker_exits": unexpected[:20],
                "hosts_killed": sorted(killed_hosts)}


async def main_async(config: ClusterConfig) -> dict:
    harness = ClusterHarness(config)
    artifacts = REPO / "test-artifacts" / "chaos"
    artifacts.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    await asyncio.to_thread(harness.start_stack)
    bound = config.ramp + config.duration + 2 * config.converge_timeout + 180
    try:
        report = await asyncio.wait_for(harness.run(), bound)
    finally:
        if harness.browsers is not None:
            await harness.browsers.stop()
        await asyncio.to_thread(harness.stop_stack, artifacts)
    report["hosts"] = harness.host_report
    return chaos.write_report(report, harness, started,
                              config.report or artifacts / f"cluster-report-seed{config.seed}.json")


def run(config: ClusterConfig) -> dict:
    chaos.raise_open_file_limit()
    report = asyncio.run(main_async(config))
    if not config.quiet:
        chaos.print_summary(report)
        hosts = report["hosts"]
        print(f"HOSTS: {hosts['polls']} polls through the balancer {hosts['polls_by_host']}; "
              f"{hosts['changed_host']} on another host than the client's previous poll; "
              f"{hosts['retried_on_another_host']} retried on another host")
        print(f"RESETS by fault: {report['resets']['by_fault']} (total {report['resets']['total']})")
    return report


def parse_args(argv=None) -> ClusterConfig:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", type=Path, default=Path(os.environ.get("PBP_BIN_DIR", REPO / ".build" / "debug")))
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of writes (faults in 8-80%% of it)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--faults", default=",".join(FAULT_KINDS), help=f"from {','.join(FAULT_KINDS)}")
    parser.add_argument("--fault-interval", type=float, default=8.0)
    parser.add_argument("--write-rate", type=float, default=10.0)
    parser.add_argument("--converge-timeout", type=float, default=45.0)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="pbp-fcgi workers per host")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--report", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    faults, seed = chaos.faults_and_seed(parser, args, FAULT_KINDS)
    return ClusterConfig(bin_dir=args.bin_dir, clients=args.clients, duration=args.duration, seed=seed, faults=faults,
                         fault_interval=args.fault_interval, write_rate=args.write_rate,
                         converge_timeout=args.converge_timeout, workers=args.workers, threads=args.threads,
                         worker_ring=None, source="wal", report=args.report, keep=args.keep, hosts=args.hosts)


def main(argv=None) -> int:
    report = run(parse_args(argv))
    clean = report["ok"] and report["resets"]["total"] == 0
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
