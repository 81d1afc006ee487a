"""A Debian 12 container with systemd as PID 1, for the deployment test.

The root comes from debootstrap (cached as a tarball in .pbp/deploy-cache/),
is unpacked afresh for each run, and is booted with systemd-nspawn on a
private network (its own loopback only). Commands run inside through nsenter.
`close()` always leaves nothing behind: no process, cgroup, mount or folder.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO / ".pbp" / "deploy-cache"
SUITE = "bookworm"
# What the first-deploy sequence installs with apt-get (docs/deploy.md), plus
# what makes the root bootable. Installed at debootstrap time: the container
# has no network.
PACKAGES = ["systemd", "systemd-sysv", "dbus", "postgresql", "nginx", "libpq5", "libfcgi0ldbl", "procps", "curl"]
WORK_PREFIX = "pbp-deploy-"
CGROUP_ROOTS = [Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd")]
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Lines for the end of the test run: times, scores.
SUMMARY: list[str] = []


class ContainerError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"[deploy] {message}", file=sys.stderr, flush=True)


def debian_mirror() -> str:
    """The host's Debian mirror, as apt uses it."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for stanza in sources.read_text().split("\n\n"):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
            if SUITE in fields.get("Suites", "").split() and "security" not in fields.get("URIs", ""):
                return fields["URIs"].split()[0]
    listing = Path("/etc/apt/sources.list")
    if listing.exists():
        for line in listing.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and parts[2] == SUITE:
                return parts[1]
    return "http://deb.debian.org/debian"


def root_tarball() -> Path:
    """The cached root, made by debootstrap the first time (about 90 s)."""
    mirror = debian_mirror()
    key = hashlib.sha256(json.dumps([SUITE, mirror, sorted(PACKAGES), 1]).encode()).hexdigest()[:12]
    tarball = CACHE_DIR / f"{SUITE}-{key}.tar.zst"
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one debootstrap at a time; the others wait for it
        if tarball.exists():
            return tarball
        build = Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{os.getpid()}-debootstrap-", dir="/var/tmp"))
        try:
            root = build / "root"
            log(f"debootstrap {SUITE} from {mirror} (cached afterwards in {tarball})")
            started = time.monotonic()
            result = subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), mirror],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if result.returncode != 0:
                raise ContainerError(f"debootstrap failed:\n{result.stdout[-4000:]}")
            # Package files and lists are of no use without a network.
            for junk in (root / "var/cache/apt/archives").glob("*.deb"):
                junk.unlink()
            for junk in (root / "var/cache/apt").glob("*.bin"):
                junk.unlink()
            shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
            (root / "var/lib/apt/lists/partial").mkdir(parents=True)
            partial = tarball.with_suffix(".partial")
            subprocess.run(["tar", "-C", str(root), "--numeric-owner", "--xattrs", "-I", "zstd -T0 -3",
                            "-cf", str(partial), "."], check=True)
            partial.rename(tarball)
            log(f"root made in {time.monotonic() - started:.0f} s: {tarball.stat().st_size >> 20} MiB")
        finally:
            remove_tree(build)
    return tarball


def remove_tree(path: Path) -> None:
    """rm -rf, but never through a mount point left below it."""
    if not path.exists():
        return
    mounted = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
               if line.split()[4] == str(path) or line.split()[4].startswith(str(path) + "/")]
    if mounted:
        raise ContainerError(f"mounts left under {path}: {mounted}")
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def kill_cgroup(name: str, timeout: float = 10) -> None:
    """Kills every process in cgroup `name` (both hierarchies), then removes it."""
    unified = CGROUP_ROOTS[0] / name
    if (unified / "cgroup.kill").exists():
        (unified / "cgroup.kill").write_text("1")
    deadline = time.monotonic() + timeout
    for root in CGROUP_ROOTS:
        top = root / name
        if not top.exists():
            continue
        while True:
            pids = [int(p) for d in top.rglob("cgroup.procs") for p in d.read_text().split()]
            if not pids:
                break
            if time.monotonic() > deadline:
                raise ContainerError(f"processes left in {top}: {pids}")
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        for directory in sorted((d for d in top.rglob("*") if d.is_dir()), key=lambda d: len(d.parts), reverse=True):
            directory.rmdir()
        top.rmdir()


def sweep_leftovers() -> None:
    """Containers of earlier runs whose test process died (kill -9) are removed."""
    for root in CGROUP_ROOTS:
        for top in root.glob(f"{WORK_PREFIX}*"):
            owner = top.name[len(WORK_PREFIX):]
            if owner.isdigit() and not pid_alive(int(owner)):
                log(f"removing the leftover container cgroup {top.name}")
                kill_cgroup(top.name)
    # nspawn's propagation folder for the machine, when nspawn itself was killed.
    for folder in Path("/run/systemd/nspawn/propagate").glob(f"{WORK_PREFIX}*"):
        owner = folder.name[len(WORK_PREFIX):]
        if owner.isdigit() and not pid_alive(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)
    for work in Path("/var/tmp").glob(f"{WORK_PREFIX}*"):
        owner = work.name[len(WORK_PREFIX):].split("-")[0]
        if owner.isdigit() and not pid_alive(int(owner)):
            log(f"removing the leftover {work}")
            remove_tree(work)


class Container:
    """One booted container. Use as a context manager, or call close()."""

    def __init__(self, tarball: Path):
        self.name = f"{WORK_PREFIX}{os.getpid()}"
        self.work = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir="/var/tmp"))
        self.root = self.work / "root"
        self.console_log = self.work / "console.log"
        self.nspawn: subprocess.Popen | None = None
        self.leader: int | None = None
        self.cgroup_made = False
        self.root.mkdir()
        started = time.monotonic()
        try:
            subprocess.run(["tar", "-C", str(self.root), "--numeric-owner", "--xattrs", "-I", "zstd", "-xf",
                            str(tarball)], check=True)
        except BaseException:
            remove_tree(self.work)
            raise
        log(f"root unpacked in {time.monotonic() - started:.1f} s at {self.root}")

    # -- life ---------------------------------------------------------------

    def boot(self, timeout: float = 60) -> None:
        for root in CGROUP_ROOTS:
            (root / self.name).mkdir()
        self.cgroup_made = True
        # The launcher moves itself into a cgroup of its own first: nspawn puts
        # the container in "payload" below its caller's cgroup.
        moves = " && ".join(f"echo $$ > {root / self.name / 'cgroup.procs'}" for root in CGROUP_ROOTS)
        command = ["systemd-nspawn", "--quiet", "-D", str(self.root), "--boot", "--register=no", "--keep-unit",
                   "--private-network", f"--machine={self.name}", "--console=read-only"]
        with open(self.console_log, "wb") as console:
            self.nspawn = subprocess.Popen(["sh", "-c", f'{moves} && exec "$@"', "sh", *command],
                                           stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while self.leader is None:
            if self.nspawn.poll() is not None:
                raise ContainerError(f"systemd-nspawn exited with {self.nspawn.returncode}:\n{self.console()}")
            if time.monotonic() > deadline:
                raise ContainerError(f"no container init after {timeout} s:\n{self.console()}")
            self.leader = self.find_leader()
            time.sleep(0.05)
        # is-system-running needs the manager's bus to exist first.
        state = ""
        while time.monotonic() < deadline:
            state = self.run("systemctl is-system-running --wait", check=False, timeout=timeout).stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(0.2)
        if state not in ("running", "degraded"):
            raise ContainerError(f"the container did not boot (state {state!r}):\n{self.console()}")
        if state == "degraded":
            log("booted, degraded:\n" + self.run("systemctl --failed --no-pager", check=False).stdout)

    def find_leader(self) -> int | None:
        """The container's PID 1, as a pid on the host: a descendant of nspawn whose
        innermost pid is 1."""
        pending = [self.nspawn.pid]
        while pending:
            pid = pending.pop()
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except FileNotFoundError:
                continue
            nspids = re.search(r"^NSpid:\s*(.*)$", status, re.M).group(1).split()
            if len(nspids) > 1 and nspids[-1] == "1":
                # Not before it is systemd: until then its mounts are being set up.
                return pid if re.search(r"^Name:\s*systemd$", status, re.M) else None
            pending.extend(int(child) for child in children)
        return None

    def close(self) -> None:
        """Powers the container off (killing it if it hangs) and removes everything."""
        errors = []
        if self.nspawn is not None and self.nspawn.poll() is None:
            # SIGTERM makes nspawn ask the container's systemd to power off.
            self.nspawn.send_signal(signal.SIGTERM)
            try:
                self.nspawn.wait(timeout=30)
            except subprocess.TimeoutExpired:
                errors.append("the container did not power off within 30 s; killed")
                self.nspawn.kill()
                self.nspawn.wait()
        if self.cgroup_made:
            try:
                kill_cgroup(self.name)
            except (OSError, ContainerError) as error:
                errors.append(f"cgroup cleanup: {error}")
        try:
            remove_tree(self.work)
        except (OSError, ContainerError, subprocess.CalledProcessError) as error:
            errors.append(f"removing {self.work}: {error}")
        if errors:
            raise ContainerError("; ".join(errors))

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def console(self) -> str:
        try:
            return self.console_log.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""

    # -- inside ---------------------------------------------------------------

    def enter(self, *namespaces: str) -> list[str]:
        flags = ["-a"] if not namespaces else [f"--{n}" for n in namespaces]
        return ["nsenter", "-t", str(self.leader), *flags]

    def run(self, script: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """Runs a bash script inside the container, as root, with a clean environment."""
        command = [*self.enter(), "env", "-i", f"PATH={CONTAINER_PATH}", "HOME=/root", "LANG=C.UTF-8",
                   "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0", "bash", "-euo", "pipefail", "-c", script]
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise ContainerError(f"in the container: {script}\nexit {result.returncode}\n"
                                 f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}")
        return result

    def net(self, command: list[str], **kwargs) -> subprocess.Popen:
        """Starts a host program in the container's network namespace only."""
        return subprocess.Popen([*self.enter("net"), *command], **kwargs)

    def processes(self) -> list[tuple[int, str]]:
        """(host pid, executable) of every process in the container."""
        namespace = os.readlink(f"/proc/{self.leader}/ns/pid")
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.readlink(entry / "ns" / "pid") != namespace:
                    continue
                found.append((int(entry.name), os.readlink(entry / "exe")))
            except OSError:
                continue
        return found
