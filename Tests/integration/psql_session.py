"""psql as a given role, and PBP's NOTIFY channel heard through it: what the
tests of the database's own side (row rules, the wal source) share."""

from __future__ import annotations

import json
import re
import subprocess


def psql_as(stack, sql: str, user: str = "postgres", database: str = "pbp") -> subprocess.CompletedProcess:
    """psql logged in as `user`, the script on stdin, stopping at the first error (not raised)."""
    env = stack.pg_env()
    env["PGUSER"] = user
    return subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", database, "-f", "-"],
                          input=sql, env=env, capture_output=True, text=True, timeout=120)


NOTIFICATION = re.compile(r'^Asynchronous notification "[^"]+" with payload "(.*)" received from server process',
                          re.MULTILINE)


def notifications(stack, sql: str) -> list[dict]:
    """The payloads on PBP's NOTIFY channel while `sql` runs, as the superuser."""
    channel = stack.psql("select pbp_stream_channel()").strip()
    result = psql_as(stack, f'listen "{channel}";\n{sql.rstrip().rstrip(";")};\nselect 1;\n')
    assert result.returncode == 0, result.stderr
    return [json.loads(payload) for payload in NOTIFICATION.findall(result.stdout)]
