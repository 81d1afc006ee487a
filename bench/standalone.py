"""What a bench part's script needs to run alone (`bench/<part>.py --bin-dir DIR`):
a stack of its own in a temporary folder, stopped whatever happens."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, TypeVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

from pbpstack import Stack, free_port  # noqa: E402

Result = TypeVar("Result")


def on_a_stack_of_its_own(bin_dir: Path, measure: Callable[[Stack], Result], **stack_options) -> Result:
    """Starts a stack with `bin_dir`'s binaries, runs `measure` on it, and stops it."""
    root = Path(tempfile.mkdtemp(prefix="pbp-bench-"))
    os.chmod(root, 0o755)
    stack = Stack(root, free_port(), bin_dir, log=lambda message: None, **stack_options)
    stack.start()
    try:
        return measure(stack)
    finally:
        stack.stop()


def printed(line: str) -> None:
    print(line, flush=True)
