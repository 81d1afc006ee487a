"""The deployed container that every test in test_deploy.py looks at: booted,
PBP installed with `make install`, then docs/deploy.md's first-deploy blocks
run inside it, exactly as written."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest

from container import REPO, SUMMARY, Container, log, root_tarball, sweep_leftovers

DOC = REPO / "docs" / "deploy.md"
ARTIFACTS = REPO / "test-artifacts"


def first_deploy_blocks() -> list[str]:
    """The ```sh first-deploy blocks of docs/deploy.md, in order."""
    text = DOC.read_text()
    blocks = re.findall(r"^([ \t]*)```sh first-deploy\n(.*?)^\1```", text, re.S | re.M)
    return ["\n".join(line[len(indent):] for line in body.splitlines()) for indent, body in blocks]


def save_artifacts(container: Container) -> None:
    """The container's journal and console, for a person looking into a failure."""
    ARTIFACTS.mkdir(exist_ok=True)
    if container.leader is not None and container.nspawn is not None and container.nspawn.poll() is None:
        journal = container.run("journalctl -b -o short-monotonic --no-pager", check=False, timeout=60)
        (ARTIFACTS / "deploy-journal.log").write_text(journal.stdout + journal.stderr)
    (ARTIFACTS / "deploy-console.log").write_text(container.console())
    log(f"the container's journal and console are in {ARTIFACTS}/deploy-*.log")


def pytest_terminal_summary(terminalreporter):
    if SUMMARY:
        terminalreporter.write_sep("-", "deployment")
        for line in SUMMARY:
            terminalreporter.write_line(line)


def pytest_configure(config):
    # A SIGTERM (CI's timeout, a Ctrl-C through make) still runs the teardown.
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


@pytest.fixture(scope="session")
def deployed():
    if os.geteuid() != 0:
        pytest.fail("the deployment test boots a container: run it as root (make test-deploy uses sudo)")
    blocks = first_deploy_blocks()
    assert len(blocks) >= 4, f"docs/deploy.md has {len(blocks)} first-deploy blocks"
    timings = {}
    started = time.monotonic()
    sweep_leftovers()
    tarball = root_tarball()
    timings["root (debootstrap unless cached)"] = time.monotonic() - started
    mark = time.monotonic()
    container = Container(tarball)
    timings["unpack"] = time.monotonic() - mark
    try:
        mark = time.monotonic()
        log("make install DESTDIR=" + str(container.root))
        result = subprocess.run(["make", "-C", str(REPO), "install", f"DESTDIR={container.root}"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"make install failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        timings["make install"] = time.monotonic() - mark
        mark = time.monotonic()
        container.boot()
        timings["boot"] = time.monotonic() - mark
        mark = time.monotonic()
        for block in blocks:
            log("docs/deploy.md:\n" + block)
            container.run("set -x\n" + block, timeout=180)
        timings["first deploy"] = time.monotonic() - mark
        SUMMARY.append("setup: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))
        log(SUMMARY[-1])
        yield container
    finally:
        save_artifacts(container)
        mark = time.monotonic()
        container.close()
        SUMMARY.append(f"container powered off and removed in {time.monotonic() - mark:.1f} s")
        log(SUMMARY[-1])
