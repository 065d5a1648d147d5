"""A synthetic model family whose training starts processes of its own, for the trial's process tree.

At step ``at`` it starts, by ``kind``:

* ``"fork"``: an ``os.fork`` child that touches ``mb`` MiB and holds them ``hold_s`` seconds (the step waits for it);
* ``"subprocess"``: the same in a new interpreter (``subprocess.run``);
* ``"spin"``: a new interpreter that burns ``hold_s`` seconds of CPU (the step waits for it);
* ``"sleep"``: three ``sleep 300`` left running — a plain child, one in a new session (``setsid``: out of the
  trial's process group) and an orphan (its parent exits at once) — whose pids it writes to ``pid_file``;
  the step returns at once.

``spin_ms`` of CPU per step otherwise, as :mod:`tests.workloads.faults`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from sysprune.models._base import Trainer
from sysprune.models._space import FixedParam

NAME = "tests.workloads.tree"
INPUTS = frozenset({"tabular", "image"})
SPACE = {
    "kind": FixedParam("none"),
    "at": FixedParam(0),
    "mb": FixedParam(0),
    "hold_s": FixedParam(0.0),
    "pid_file": FixedParam(""),
    "spin_ms": FixedParam(1),
}

_HOLD = "import sys, time; b = b'x' * int(float(sys.argv[1]) * 2**20); time.sleep(float(sys.argv[2]))"
_SPIN = "import sys, time\nend = time.process_time() + float(sys.argv[1])\nwhile time.process_time() < end: pass"
# the orphan's own output must not be the pipe its parent's output is read from (the read would wait 300 s)
_ORPHAN = (
    "import subprocess as s; p = s.Popen(['sleep', '300'], stdin=s.DEVNULL, stdout=s.DEVNULL, stderr=s.DEVNULL); "
    "print(p.pid, flush=True)"
)


def _fork_and_hold(mb: float, hold_s: float) -> None:
    pid = os.fork()
    if pid == 0:  # the child: touched memory, held, then gone without running the parent's clean-up
        try:
            buf = b"x" * int(mb * 2**20)
            time.sleep(hold_s)
            os._exit(0 if buf else 1)
        finally:
            os._exit(1)
    os.waitpid(pid, 0)


def _leave_sleepers(pid_file: str) -> None:
    plain = subprocess.Popen(["sleep", "300"])
    setsid = subprocess.Popen(["sleep", "300"], start_new_session=True)
    orphan = subprocess.run([sys.executable, "-c", _ORPHAN], capture_output=True, text=True, check=True)
    pids = [plain.pid, setsid.pid, int(orphan.stdout.split()[0])]
    with open(pid_file, "w") as f:
        f.write(" ".join(map(str, pids)))


class _Tree(Trainer):
    def __init__(self, params: dict) -> None:
        self.p = params

    def train_step(self, step: int) -> dict[str, float]:
        p = self.p
        if step == p["at"]:
            if p["kind"] == "fork":
                _fork_and_hold(p["mb"], p["hold_s"])
            elif p["kind"] == "subprocess":
                subprocess.run([sys.executable, "-c", _HOLD, str(p["mb"]), str(p["hold_s"])], check=True)
            elif p["kind"] == "spin":
                subprocess.run([sys.executable, "-c", _SPIN, str(p["hold_s"])], check=True)
            elif p["kind"] == "sleep":
                _leave_sleepers(p["pid_file"])
        end = time.process_time() + p["spin_ms"] / 1e3
        while time.process_time() < end:
            pass
        return {"train_loss": 1.0 / (step + 1)}

    def evaluate(self) -> dict[str, float]:
        return {"val_accuracy": 0.5}

    def infer(self, X):
        return X.sum()

    def size(self) -> dict[str, float]:
        return {"n_params": 1.0, "model_bytes": 8.0}


def create(params: dict, data, *, seed: int) -> Trainer:
    return _Tree({**{k: v.value for k, v in SPACE.items()}, **params})
