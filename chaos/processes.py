"""The process driver: each Procfile process on its own, so the fault script can SIGKILL one
and start it again. The commands are the Procfile's (the one `make run` hands to honcho),
run by bash so its `${VAR:-default}` expand the same way; each process group gets its own
session, so a kill takes the Celery worker's children with it, as a crash would.
Output goes to one log per process (appended across restarts, each start marked)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def procfile_commands(path: Path = ROOT / "Procfile") -> dict[str, str]:
    commands = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, command = line.split(":", 1)
            commands[name.strip()] = command.strip()
    return commands


class ProcessSet:
    def __init__(self, *, env: dict[str, str], log_dir: Path, names: tuple[str, ...]) -> None:
        self.env = env
        self.log_dir = log_dir
        commands = procfile_commands()
        self.commands = {name: commands[name] for name in names}
        self.running: dict[str, subprocess.Popen] = {}
        self.starts: Counter[str] = Counter()
        self.kills: Counter[str] = Counter()

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self, name: str) -> None:
        """Start `name`; never two of one: a copy still running is killed first."""
        if self.alive(name):
            self.kill(name)
            self.kills[name] -= 1  # not one of the script's kills
        self.starts[name] += 1
        with self.log_path(name).open("a") as log:
            log.write(f"\n=== chaos: start {self.starts[name]} of {name} at {time.time():.3f}\n")
            log.flush()
            self.running[name] = subprocess.Popen(
                ["bash", "-c", self.commands[name]],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self, name: str) -> bool:
        process = self.running.get(name)
        return process is not None and process.poll() is None

    def kill(self, name: str) -> None:
        """SIGKILL the whole process group: no cleanup, no flush, like a crash."""
        process = self.running.get(name)
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)
        self.kills[name] += 1
        with self.log_path(name).open("a") as log:
            log.write(f"\n=== chaos: SIGKILL {name} at {time.time():.3f}\n")

    def restart(self, name: str) -> None:
        self.kill(name)
        self.start(name)

    def stop_all(self, timeout_s: float = 15.0) -> None:
        """SIGTERM every group (the simulator last), then SIGKILL what is left."""
        order = [name for name in self.running if name != "sim"] + (["sim"] if "sim" in self.running else [])
        for name in order:
            process = self.running[name]
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout_s
        for name in order:
            process = self.running[name]
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(process.pid, signal.SIGKILL)  # stragglers of the group too
            except (ProcessLookupError, PermissionError):
                pass
            process.wait(timeout=10)
