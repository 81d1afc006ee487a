"""schemathesis, a third-party API fuzzer, against the served OpenAPI document
through nginx: every operation, every check, the examples, coverage, fuzzing
and stateful phases. A failure is a defect of the server or of the document.

The seed varies from run to run, so that each run of `make test` tries inputs
the last one did not (the document changes with the tables, and a fixed seed
would test the same few hundred cases forever); it is printed in the report,
and SCHEMATHESIS_SEED=N replays a run. The report (JUnit, NDJSON, and the
pytest file that reproduces failures) is kept in test-artifacts/schemathesis/.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO, temporary_stack

ARTIFACTS = REPO / "test-artifacts" / "schemathesis"
CONFIG = Path(__file__).with_name("schemathesis.toml")
# Cases per operation and phase: with 17 operations, a run takes about 1-2 minutes.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "100"))


def schemathesis_command() -> str:
    found = Path(sys.executable).with_name("schemathesis")
    assert found.exists(), f"schemathesis is not installed beside {sys.executable}: make python-deps"
    return str(found)


def run_schemathesis(stack, seed: int, workers: int = 2) -> tuple[subprocess.CompletedProcess, str, float]:
    command = [
        schemathesis_command(), "--config-file", str(CONFIG), "run", f"{stack.base_url}/api/openapi.json",
        "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", str(MAX_EXAMPLES), "--seed", str(seed), "--workers", str(workers),
        "--request-timeout", "20", "--continue-on-failure",
        "--report", "junit,ndjson,pytest", "--report-dir", str(ARTIFACTS),
    ]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=480, cwd=ARTIFACTS,
                            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120"})
    elapsed = time.monotonic() - started
    report = result.stdout + result.stderr
    with open(ARTIFACTS / "report.txt", "a") as file:
        file.write(f"$ {' '.join(command)}\n\n{report}\n({elapsed:.0f} s)\n\n")
    print(report)
    return result, report, elapsed


def only_tool_errors(report: str) -> bool:
    """Whether schemathesis found nothing wrong with the API but failed in
    itself: an "Errors:" summary (its own crashes, such as CPython 3.11.7's
    "AST constructor recursion depth mismatch" inside hypothesis) and no
    "Failures:" one (a check the server or the document failed)."""
    return "\nErrors:" in report and "\nFailures:" not in report


def test_schemathesis_finds_nothing():
    seed = int(os.environ.get("SCHEMATHESIS_SEED") or random.SystemRandom().randrange(1, 2**31))
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    with temporary_stack("schemathesis", extra_fcgi_args=["--poll-timeout", "1", "--max-poll-timeout", "2"]) as stack:
        result, report, elapsed = run_schemathesis(stack, seed)
        if result.returncode != 0 and only_tool_errors(report):
            # A crash of the tool says nothing of the API: one more run, with
            # another seed, must then find nothing either (a failed check
            # fails at once). Its one worker thread cannot meet the crash
            # seen: CPython 3.11 keeps the AST builder's recursion depth per
            # interpreter, so hypothesis parsing sources in two threads at
            # once trips its "recursion depth mismatch" check (cpython
            # gh-106905); with two workers the retry crashed so as well.
            seed = random.SystemRandom().randrange(1, 2**31)
            result, report, elapsed = run_schemathesis(stack, seed, workers=1)
    assert result.returncode == 0, f"schemathesis failed (seed {seed}, {elapsed:.0f} s):\n{report}"
