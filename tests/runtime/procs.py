"""Worker subprocesses (``docgraph worker``) for crash and kill tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from docgraph.core.settings import Settings
from tests.conftest import worker_env


class WorkerProcs:
    """A set of real ``docgraph worker`` processes that tests kill and restart."""

    def __init__(self, settings: Settings, log_dir: Path, stages: list[str] | None = None, **env: str):
        self.settings = settings
        self.log_dir = log_dir
        self.stages = stages
        self.env = worker_env(settings, **env)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started = 0

    def start(
        self, n: int = 1, stages: list[str] | None = None, *, wrap: list[str] | None = None
    ) -> list[subprocess.Popen[bytes]]:
        """Start ``n`` workers; ``wrap`` prefixes the command (``ip netns exec <ns>``:
        a worker on another host)."""
        out = []
        for _ in range(n):
            cmd = [*(wrap or []), sys.executable, "-m", "docgraph.core.cli", "worker"]
            for s in stages or self.stages or []:
                cmd += ["--stage", s]
            log = open(self.log_dir / f"worker-{self.started}.log", "wb")
            self.started += 1
            proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
            log.close()
            self.procs.append(proc)
            out.append(proc)
        return out

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def restart_dead(self) -> int:
        """Replace every exited worker with a new one; returns how many."""
        dead = [p for p in self.procs if p.poll() is not None]
        for p in dead:
            self.procs.remove(p)
        if dead:
            self.start(len(dead))
        return len(dead)

    def kill9(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self, timeout: float = 30) -> list[int]:
        for p in self.alive():
            p.send_signal(signal.SIGTERM)
        codes = []
        for p in self.procs:
            try:
                codes.append(p.wait(timeout))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(p.wait())
        return codes

    def logs(self) -> str:
        return "\n".join(
            f"--- {f.name}\n{f.read_text(errors='replace')[-3000:]}"
            for f in sorted(self.log_dir.glob("worker-*.log"))
        )
