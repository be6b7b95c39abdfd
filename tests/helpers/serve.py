"""``mxsim serve`` as a subprocess for tests: start it, read where it
listens, stop it by its PID."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

#: The console script next to this interpreter (``python -m sim.cli`` would
#: load the CLI module twice, as ``__main__`` and as ``sim.cli``).
MXSIM = str(Path(sys.executable).parent / "mxsim")
LINE = re.compile(r"listening (\w+) (\S+):(\d+) \((?:port (\d+) of \S+|zones of \S+)\)")


@dataclass
class Served:
    """A running ``mxsim serve``: its process and its listeners."""

    proc: subprocess.Popen
    lines: list[str]
    ports: dict[tuple[str, int], int] = field(default_factory=dict)  # (service, scenario port) -> bound port

    def port(self, scenario_port: int = 25, service: str = "smtp") -> int:
        return self.ports[(service, scenario_port)]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Send ``sig`` and wait for the exit status."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        rc = self.proc.wait(timeout)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc


def serve_args(scenario: Path | str, host: str, state: Path | str, *extra: str) -> list[str]:
    return [MXSIM, "serve", str(scenario), "--host", host,
            "--state", str(state), *extra]


def start_serve(scenario: Path | str, host: str, state: Path | str, *extra: str,
                listen: tuple[int, ...] = (25,)) -> Served:
    """Start ``mxsim serve`` with each of ``listen`` on 127.0.0.1:0 and wait
    until it says ``serving``; raises with its output if it exits first."""
    args = serve_args(scenario, host, state, *extra)
    for p in listen:
        args += ["--listen", f"{p}=127.0.0.1:0"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    served = Served(proc, [])
    while True:
        line = proc.stdout.readline()
        if not line:
            err = proc.stderr.read()
            proc.wait()
            raise RuntimeError(f"mxsim serve exited {proc.returncode}: {served.lines} {err}")
        served.lines.append(line.rstrip("\n"))
        m = LINE.match(line)
        if m and m.group(4):
            served.ports[(m.group(1), int(m.group(4)))] = int(m.group(3))
        elif m:
            served.ports[(m.group(1), 53)] = int(m.group(3))
        if line.startswith("serving "):
            return served
