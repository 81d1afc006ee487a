"""The deployed container that every test in test_deploy.py looks at: booted,
then docs/deploy.md's first-deploy blocks run inside it, exactly as written:
they install the Debian package that `make deb` built (copied to /root, the
blocks' working directory), set the database up and enable the site.
`upgrade_package` is a newer build of the same package, for the upgrade."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from container import REPO, SUMMARY, Container, log, root_tarball, sweep_leftovers

DOC = REPO / "docs" / "deploy.md"
ARTIFACTS = REPO / "test-artifacts"
# Where the first-deploy blocks run, with the package beside them.
BLOCK_DIR = "/root"


def doc_blocks(tag: str) -> list[str]:
    """The ```sh TAG blocks of docs/deploy.md, in order."""
    text = DOC.read_text()
    blocks = re.findall(rf"^([ \t]*)```sh {re.escape(tag)}\n(.*?)^\1```", text, re.S | re.M)
    return ["\n".join(line[len(indent):] for line in body.splitlines()) for indent, body in blocks]


def first_deploy_blocks() -> list[str]:
    return doc_blocks("first-deploy")


def run_doc_block(container: Container, block: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """One of docs/deploy.md's blocks, as an operator runs it: as root, in the
    folder of the first deploy, stopping at the first failing command."""
    log("docs/deploy.md:\n" + block)
    return container.run(f"export DEBIAN_FRONTEND=noninteractive\ncd {BLOCK_DIR}\nset -x\n" + block, timeout=timeout)


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


def make(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), *args], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"make {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def build_package(version: str | None = None) -> tuple[str, Path]:
    """`make deb` (lintian included), at `version` if given: (version, path)."""
    overrides = [f"DEB_VERSION={version}"] if version else []
    version = make("-s", "deb-version", *overrides).stdout.strip()
    started = time.monotonic()
    log(f"make deb ({version})")
    built = make("deb", *overrides).stdout
    path = REPO / re.search(r"^built (\S+\.deb)$", built, re.M).group(1)
    SUMMARY.append(f"make deb {version}: {time.monotonic() - started:.1f} s, {path.stat().st_size >> 10} KiB")
    lintian = [line for line in built.splitlines() if re.match(r"^[EWI]: pbp", line)]
    if lintian:
        SUMMARY.append("lintian: " + "; ".join(lintian))
    return version, path


@pytest.fixture(scope="session")
def package():
    return build_package()


@pytest.fixture(scope="session")
def upgrade_package(package):
    """The same tree as a newer version: upstream version + "+1"."""
    version, _ = package
    upstream, revision = version.rsplit("-", 1)
    return build_package(f"{upstream}+1-{revision}")


@pytest.fixture(scope="session")
def deployed(package):
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
        shutil.copy(package[1], container.root / BLOCK_DIR.lstrip("/"))
        mark = time.monotonic()
        container.boot()
        timings["boot"] = time.monotonic() - mark
        mark = time.monotonic()
        for block in blocks:
            run_doc_block(container, block)
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
