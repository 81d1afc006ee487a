"""`make install`, for systems other than Debian's package: staged with
DESTDIR (no container), it must put every file where docs/deploy.md says,
with the paths of the PREFIX it was given. test_deploy.py deploys the
package, which is this same `make install` given Debian's paths."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import pytest

from container import REPO

EXPECTED = [
    "usr/local/bin/pbp-notifyd", "usr/local/bin/pbp-fcgi", "usr/local/sbin/pbp-setup-db",
    "usr/local/lib/systemd/system/pbp-notifyd.service", "usr/local/lib/systemd/system/pbp-fcgi.service",
    "usr/local/lib/systemd/system/pbp-fcgi.socket", "usr/local/lib/systemd/system/nginx.service.d/pbp.conf",
    "usr/local/lib/sysusers.d/pbp.conf", "usr/local/lib/tmpfiles.d/pbp.conf",
    "usr/local/share/pbp/sql/01-pbp.sql", "usr/local/share/pbp/sql/migrate.sh", "usr/local/share/pbp/static/index.html",
    "usr/local/share/doc/pbp/deploy.md", "etc/pbp/pbp-notifyd.conf", "etc/pbp/pbp-fcgi.conf",
    "etc/nginx/sites-available/pbp", "etc/nginx/pbp-site.d/limits.conf",
]


@pytest.fixture(scope="module")
def staged():
    with tempfile.TemporaryDirectory(prefix="pbp-make-install-") as root:
        result = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), "install", f"DESTDIR={root}"],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        yield Path(root)


def test_make_install_puts_every_file_in_place(staged):
    missing = [path for path in EXPECTED if not (staged / path).is_file()]
    assert missing == []


def test_make_install_renders_the_prefix_into_units_site_and_setup_command(staged):
    rendered = [*sorted((staged / "usr/local/lib/systemd/system").glob("pbp-*")),
                staged / "etc/nginx/sites-available/pbp", staged / "usr/local/sbin/pbp-setup-db"]
    for path in rendered:
        text = path.read_text()
        assert not re.search(r"@[A-Z_]+@", text), f"a placeholder left in {path}"
    service = (staged / "usr/local/lib/systemd/system/pbp-fcgi.service").read_text()
    assert "ExecStart=/usr/local/bin/pbp-fcgi --config /etc/pbp/pbp-fcgi.conf" in service
    assert "root /usr/local/share/pbp/static" in (staged / "etc/nginx/sites-available/pbp").read_text()
    setup = staged / "usr/local/sbin/pbp-setup-db"
    assert "/usr/local/share/pbp/sql" in setup.read_text()
    printed = subprocess.run([str(setup), "--print-sql"], capture_output=True, text=True,
                             env={"PBP_SQLDIR": str(staged / "usr/local/share/pbp/sql"), "PATH": "/usr/bin:/bin"})
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.count("\nbegin;\n") == len(list((staged / "usr/local/share/pbp/sql").glob("*.sql")))
