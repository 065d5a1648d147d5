"""A throw-away PostgreSQL server of its own for the fault cases that stop the database mid-run (never the shared
test server): started with tools/start-postgres.sh on another port and folder, stopped and started by pg_ctl."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries (tools/start-postgres.sh installs them)")
    return found[-1]


def _as_pg(*cmd: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


def _untagged() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "SYSPRUNE_FAULT_TAG"}


class ThrowAwayServer:
    def __init__(self, port: int, folder: str) -> None:
        self.port, self.folder = port, folder
        self.url = ""

    def start_fresh(self) -> str:
        env = {**_untagged(), "SYSPRUNE_PG_PORT": str(self.port), "SYSPRUNE_PG_DIR": self.folder}
        out = subprocess.run(
            ["bash", str(REPO / "tools" / "start-postgres.sh")], env=env, capture_output=True, text=True, check=True
        ).stdout
        self.url = out.strip().split("=", 1)[1].strip("'")
        return self.url

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            _as_pg(f"{_bindir()}/pg_ctl", "-D", f"{self.folder}/data", *args),
            check=True,
            capture_output=True,
            env=_untagged(),  # the server outlives the case on purpose: it must not carry the case's tag
        )

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        self._ctl(
            "-l",
            f"{self.folder}/log",
            "-w",
            "-o",
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )

    def remove(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)
