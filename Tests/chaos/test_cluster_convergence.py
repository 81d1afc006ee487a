"""`make test`'s share of `make cluster-chaos` (cluster_chaos.py): a short
run of the convergence harness through a balancer in front of three app
hosts, with a host killed and restarted, PostgreSQL restarted and a host's
notifyd killed (and clients dropped and reopened). Every host serves every
other's cursors: no fault may reset a client, and every replica must end
equal to the tables.

PBP_CHAOS_SEED, PBP_CHAOS_CLIENTS and PBP_CHAOS_DURATION change the run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import cluster_chaos  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


def test_through_a_balancer_and_three_hosts_no_fault_resets_a_client_and_nothing_drifts():
    config = cluster_chaos.ClusterConfig(
        bin_dir=Path(os.environ.get("PBP_BIN_DIR", HERE.parents[1] / ".build" / "debug")),
        clients=int(os.environ.get("PBP_CHAOS_CLIENTS", "60")),
        duration=float(os.environ.get("PBP_CHAOS_DURATION", "30")),
        seed=int(os.environ.get("PBP_CHAOS_SEED", "20261202")),
        faults=list(cluster_chaos.FAULT_KINDS), fault_interval=4.0, write_rate=10, converge_timeout=45,
        workers=1, threads=4, worker_ring=None, source="wal")
    report = cluster_chaos.run(config)
    context = f"seed {config.seed}; report {report['report_path']}; replay: {report['replay']}"
    happened = {f["kind"] for f in report["faults"]}
    assert set(cluster_chaos.FAULT_KINDS) <= happened, f"faults that never struck: {context}"
    failed = [f for f in report["faults"] if f["detail"].startswith("FAILED")]
    assert not failed, f"faults the harness could not inflict: {failed}; {context}"
    assert not report["client_errors"], f"{report['client_errors'][:3]}; {context}"
    assert report["resets"]["total"] == 0, f"resets by fault {report['resets']['by_fault']}: {report['resets']['log'][:5]}; {context}"
    for block in (report["convergence"], report["canary"]):
        assert block["drift_rows"] == 0, f"{block['label']}: drift {block['drift_examples'][:2]}; {context}"
        assert not block["never_converged"], f"{block['label']}: {block['never_converged'][:20]}; {context}"
    assert not report["not_live"], f"replicas that missed the canary: {report['not_live'][:20]}; {context}"
    assert report["phantom_count"] == 0 and report["leak_count"] == 0, context
    assert not report["stack_health"]["problems"], f"{report['stack_health']}; {context}"
    hosts = report["hosts"]
    assert set(hosts["polls_by_host"]) == {"a", "b", "c"}, hosts
    assert hosts["changed_host"] > hosts["polls"] // 4, f"no stickiness: polls move between hosts: {hosts}"
    assert report["write_totals"].get("ok", 0) > 100 and report["events"]["delivered"] > 0
