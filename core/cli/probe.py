"""The worker liveness check, in the standard library only: a container probe runs it
every few seconds, on machines busy enough that importing the whole CLI could outlast
the probe's timeout (a busy worker marked unhealthy is what it must never be)."""

from __future__ import annotations

import os
import sys
import time

__all__ = ["liveness", "quick_health"]


def liveness(path: str | os.PathLike[str], max_age: float) -> str | None:
    """None if ``path`` was touched in the last ``max_age`` seconds, else why not."""
    try:
        age = time.time() - os.stat(path).st_mtime
    except OSError:
        return f"unhealthy: {path} does not exist (the worker is not running or has not started)"
    if age > max_age:
        return f"unhealthy: {path} is {age:.0f} s old (limit {max_age:.0f} s): the worker is stuck"
    return None


def quick_health(argv: list[str]) -> int | None:
    """``docgraph health [--max-age N]`` answered without loading the CLI, when the file
    is named in the environment; None for anything else (the full command handles it)."""
    if argv[:1] != ["health"] or not os.environ.get("DOCGRAPH_HEALTH_FILE"):
        return None
    rest, max_age = argv[1:], 30.0
    if rest[:1] == ["--max-age"] and len(rest) == 2:
        try:
            max_age = float(rest[1])
        except ValueError:
            return None
    elif rest:
        return None  # --ready, --help, a typo: the full command
    problem = liveness(os.environ["DOCGRAPH_HEALTH_FILE"], max_age)
    print(problem or "ok", file=sys.stderr if problem else sys.stdout)
    return 1 if problem else 0
