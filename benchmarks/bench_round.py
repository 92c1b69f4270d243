"""Rounds with 1,000 test-drive participants against a real coordinator process.

    .venv/bin/python benchmarks/bench_round.py [--participants 1000] [--length 10000]

Starts ``xaynet-coordinator`` (memory storage) with a config written for the run, then runs a
:class:`~xaynet.testdrive.fleet.Fleet` of simulated participants in this process until
``--rounds`` rounds the fleet saw from their start have produced a verified global model.
Prints, per round and on average:

* each phase's duration (the coordinator's phase timestamps) and when, after the phase began,
  its first and last message was accepted: the phases last at least their configured
  ``time.min``, the last acceptance shows how long the messages really took;
* the coordinator's CPU seconds per phase (``/proc/<pid>/stat``, sampled at every phase
  event) and its peak resident memory (``VmHWM`` in ``/proc/<pid>/status``);
* the participants' CPU per task (thread CPU time of each compute step: role selection, Sum,
  masking the Update, aggregating the masks for Sum2) and the fleet process's CPU;
* the sealed bytes of each message type against the raw model (4 bytes x d), and the bytes
  of the dictionaries and models the participants download.

Linux only (``/proc``). The fleet coalesces concurrent identical ``GET /params`` and
``GET /sums`` (``--no-coalesce``: every participant polls by itself).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from xaynet.testdrive.fleet import Fleet, FleetConfig, elapsed
from xaynet.testdrive.ledger import MESSAGE_PHASES, RoundRecord
from xaynet.testdrive.models import WeightSpec

COORDINATOR = Path(sys.executable).parent / "xaynet-coordinator"
TICKS = os.sysconf("SC_CLK_TCK")
TASKS = ("sum", "update", "sum2")


def config_text(port: int, models: Path, args: argparse.Namespace) -> str:
    # Windows long enough for every participant of the round: the update window must hold
    # about 700 masked models (one compute thread in the fleet, one coordinator process).
    return f"""\
[api]
bind_address = "127.0.0.1:{port}"
max_body_bytes = 16777216

[pet.sum]
probability = {args.sum_probability}
count = {{ min = 3, max = 100 }}
time = {{ min = 2, max = 120 }}

[pet.update]
probability = {args.update_probability}
count = {{ min = 3, max = 1000 }}
time = {{ min = {args.update_window}, max = 300 }}

[pet.sum2]
count = {{ min = 3, max = 100 }}
time = {{ min = {args.sum2_window}, max = 120 }}

[model]
length = {args.length}

[storage]
backend = "memory"

[models]
backend = "directory"
directory = "{models}"

[log]
level = "warning"

[metrics]
enabled = false
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


def memory_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def start_coordinator(config: Path) -> subprocess.Popen[bytes]:
    log = (config.parent / "coordinator.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("XAYNET__")}
    return subprocess.Popen(
        [str(COORDINATOR), "--config", str(config)],
        cwd=config.parent,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the coordinator exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("the coordinator did not get ready")


def machine() -> str:
    cpu = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    total = 0
    with open("/proc/meminfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("MemTotal:"):
                total = int(line.split()[1])
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {total / 2**20:.0f} GiB, {platform.platform()}, "
        f"CPython {platform.python_version()}"
    )


class CoordinatorProbe:
    """Samples the coordinator's CPU at every phase event (a fleet listener)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        #: (round id, phase) -> coordinator CPU seconds when the fleet saw the phase begin
        self.cpu_at: dict[tuple[int, str], float] = {}

    def __call__(self, kind: str, record: RoundRecord) -> None:
        if kind == "phase" and record.phase is not None:
            self.cpu_at.setdefault((record.round_id, record.phase), cpu_seconds(self.pid))

    def per_phase(self, record: RoundRecord) -> dict[str, float]:
        ordered = sorted(record.phases.items(), key=lambda item: item[1])
        result: dict[str, float] = {}
        for (phase, _), (end_phase, _) in itertools.pairwise(ordered):
            start = self.cpu_at.get((record.round_id, phase))
            end = self.cpu_at.get((record.round_id, end_phase))
            if phase in MESSAGE_PHASES and start is not None and end is not None:
                result[phase] = end - start
        return result


def _accepted(record: RoundRecord) -> str:
    return "/".join(str(record.accepted[task]) for task in TASKS)


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def report(
    fleet: Fleet, probe: CoordinatorProbe, pid: int, args: argparse.Namespace, cpu: float
) -> None:
    rounds = [r for r in fleet.ledger.completed if r.verified]
    d = args.length
    raw = 4 * d
    print(f"machine: {machine()}")
    print(
        f"participants {len(fleet.members)}, d = {d}, p_sum {args.sum_probability}, "
        f"p_update {args.update_probability}, update window {args.update_window} s, "
        f"coalesce {not args.no_coalesce}; {len(rounds)} verified rounds measured"
    )
    print()
    print("round  accepted s/u/s2 |  phase s: sum  update  sum2  unmask  total | last accepted s")
    for r in rounds:
        durations = r.durations()
        last = {
            task: r.accepted_between[task][1] - r.phases[phase]
            for task, phase in (("sum", "sum"), ("update", "update"), ("sum2", "sum2"))
            if task in r.accepted_between and phase in r.phases
        }
        print(
            f"{r.round_id:5d}  {_accepted(r):>15s} | "
            + " ".join(f"{durations.get(p, float('nan')):6.2f}" for p in MESSAGE_PHASES)
            + f" {r.duration or float('nan'):6.2f} | "
            + "  ".join(f"{t} {last[t]:.2f}" for t in TASKS if t in last)
        )
    for r in rounds:
        refused = {**r.rejected, **r.abandoned, **r.failed}
        if refused:
            print(f"  round {r.round_id} refused or abandoned: {dict(sorted(refused.items()))}")
    print()
    print("coordinator CPU s per phase (mean over rounds):")
    for phase in MESSAGE_PHASES:
        values = [probe.per_phase(r).get(phase) for r in rounds]
        present = [v for v in values if v is not None]
        print(f"  {phase:7s} {mean(present):7.2f}")
    round_cpu = [sum(probe.per_phase(r).values()) for r in rounds]
    print(f"  round   {mean(round_cpu):7.2f}")
    per_update = [
        probe.per_phase(r).get("update", 0.0) / r.accepted["update"]
        for r in rounds
        if r.accepted["update"]
    ]
    print(f"  per accepted update in the Update phase: {1000 * mean(per_update):.2f} ms")
    print(
        f"coordinator peak memory (VmHWM): {memory_kib(pid, 'VmHWM') / 1024:.0f} MiB, "
        f"now {memory_kib(pid, 'VmRSS') / 1024:.0f} MiB"
    )
    print()
    print("participant CPU ms per task (thread time; mean / max over all rounds):")
    for step in ("role", "sum", "update", "sum2"):
        times = [t for r in rounds for t in r.cpu.get(step, [])]
        if times:
            print(
                f"  {step:7s} {1000 * mean(times):8.2f} / {1000 * max(times):8.2f}  "
                f"({len(times)} tasks)"
            )
    print(
        f"fleet process CPU {cpu:.1f} s over {elapsed(fleet):.1f} s "
        f"({len(fleet.ledger.rounds)} rounds seen, incl. partial ones)"
    )
    print()
    print(f"bytes on the wire per message (sealed body, chunks included); raw model 4 x d = {raw}")
    for task in TASKS:
        sizes = [r.message_bytes[task] / r.accepted[task] for r in rounds if r.accepted[task]]
        if sizes:
            size = mean(sizes)
            print(f"  {task:7s} {size:10.0f} B  {size / raw:6.3f} x raw")
    traffic = fleet.traffic
    print("downloads per answer with a body (200):")
    for key in ("GET /sums", "GET /seeds", "GET /model", "GET /params"):
        answers = traffic.bodies.get(key, 0)
        if answers:
            per = traffic.received[key] / answers
            print(
                f"  {key:11s} {per:10.0f} B  ({answers} of {traffic.requests[key]} requests "
                "answered with a body)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=1000)
    parser.add_argument("--length", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sum-probability", type=float, default=0.015)
    parser.add_argument("--update-probability", type=float, default=0.7)
    parser.add_argument("--update-window", type=float, default=20.0)
    parser.add_argument("--sum2-window", type=float, default=6.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--no-coalesce", action="store_true")
    args = parser.parse_args()
    if not COORDINATOR.exists():
        raise SystemExit(f"{COORDINATOR} is missing: pip install -e coordinator")
    with tempfile.TemporaryDirectory(prefix="bench-round-") as tmp:
        directory = Path(tmp)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        config = directory / "coordinator.toml"
        config.write_text(config_text(port, directory / "models", args), encoding="utf-8")
        url = f"http://127.0.0.1:{port}"
        process = start_coordinator(config)
        try:
            wait_ready(url, process)
            fleet = Fleet(
                FleetConfig(
                    url,
                    participants=args.participants,
                    rounds=args.rounds,
                    duration=args.timeout,
                    weights=WeightSpec.parse("1:1000"),
                    seed=args.seed,
                    coalesce=not args.no_coalesce,
                    timeout=60.0,
                )
            )
            probe = CoordinatorProbe(process.pid)
            fleet.listeners.append(probe)
            cpu_before = time.process_time()
            asyncio.run(fleet.run())
            cpu = time.process_time() - cpu_before
            report(fleet, probe, process.pid, args, cpu)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


if __name__ == "__main__":
    main()
