"""What ``xaynet-test-drive`` shows: a live panel on a terminal, log lines otherwise, a summary."""

from __future__ import annotations

import time
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from xaynet.testdrive.fleet import Fleet, elapsed
from xaynet.testdrive.ledger import MESSAGE_PHASES, RoundRecord

__all__ = ["live_panel", "summary_table", "LogLines", "size", "result_of"]

_TASKS = ("sum", "update", "sum2")


def size(count: float, *, compact: bool = False) -> str:
    """Bytes for people: 1.2 MB (compact: 1.2M)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(count) < 1000 or unit == "GB":
            if compact:
                return f"{count:.0f}" if unit == "B" else f"{count:.1f}{unit[0].upper()}"
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def result_of(record: RoundRecord) -> str:
    """One word for a round: verified, MISMATCH, failed, unchecked, running."""
    if record.failure is not None:
        return "failed"
    if record.verified is True:
        return "verified"
    if record.verified is False:
        return "MISMATCH"
    if record.has_model:
        return "unchecked"
    return "running"


def _roles(record: RoundRecord, role: str, *, compact: bool = False) -> str:
    dropped = record.dropped.get(role, 0)
    text = str(record.roles.get(role, 0))
    if not dropped:
        return text
    return f"{text}-{dropped}" if compact else f"{text} (-{dropped})"


def _accepted(record: RoundRecord) -> str:
    return "/".join(str(record.accepted.get(task, 0)) for task in _TASKS)


def _not_accepted(record: RoundRecord) -> int:
    return sum(record.rejected.values()) + sum(record.failed.values())


def live_panel(fleet: Fleet) -> RenderableType:
    """The panel redrawn while the fleet runs."""
    ledger = fleet.ledger
    config = fleet.config
    head = Text.assemble(
        ("xaynet-test-drive ", "bold"),
        f"{config.url}  {len(fleet.members)} participants  seed {fleet.seed}  ",
        f"elapsed {elapsed(fleet):.0f} s",
    )
    goal = f" of {config.rounds}" if config.rounds else ""
    completed = ledger.completed
    verified = sum(1 for r in completed if r.verified)
    progress = Text.assemble(
        ("rounds complete ", "dim"),
        f"{len(completed)}{goal}",
        ("  verified ", "dim"),
        (str(verified), "green"),
        ("  mismatches ", "dim"),
        (str(len(ledger.mismatches)), "red" if ledger.mismatches else ""),
        ("  failed ", "dim"),
        str(len(ledger.failed)),
    )
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    if ledger.round_id is not None:
        record = ledger.round(ledger.round_id)
        since = record.phases.get(ledger.phase or "")
        phase = ledger.phase or "?"
        grid.add_row("round", f"{ledger.round_id}   phase [bold]{phase}[/bold]")
        grid.add_row(
            "roles",
            f"sum {_roles(record, 'sum')}   update {_roles(record, 'update')}   "
            f"none {record.roles.get('none', 0)}",
        )
        grid.add_row(
            "accepted",
            "   ".join(f"{task} {record.accepted.get(task, 0)}" for task in _TASKS),
        )
        grid.add_row(
            "not accepted",
            f"rejected {sum(record.rejected.values())}   abandoned "
            f"{sum(record.abandoned.values())}   failed {sum(record.failed.values())}   "
            f"retries {record.retries}",
        )
        grid.add_row("sent", f"{size(record.bytes_posted)} in {record.posts} requests")
        if since is not None and phase in MESSAGE_PHASES:
            grid.add_row("phase since", time.strftime("%H:%M:%S", time.localtime(since)))
    else:
        grid.add_row("round", "waiting for the coordinator")
    if ledger.last_error and ledger.last_error_at is not None:
        age = time.monotonic() - ledger.last_error_at
        if age < 30:
            grid.add_row("last error", Text(f"{ledger.last_error} ({age:.0f} s ago)", "yellow"))
    return Panel(Group(head, progress, grid), expand=False)


def summary_table(fleet: Fleet) -> Table:
    """Per round: phase durations, roles, messages, bytes sent, the check (fits 80 columns)."""
    table = Table(
        title="test-drive summary: phase durations (s); summers S and updaters U (-dropped); "
        "messages accepted (sum/update/sum2) and refused; bytes sent; max error",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
        pad_edge=False,
    )
    for name in (
        "round",
        "result",
        "sum",
        "upd",
        "sum2",
        "unm",
        "total",
        "S",
        "U",
        "s/u/s2",
        "ref",
        "sent",
        "error",
    ):
        table.add_column(name, justify="left" if name == "result" else "right", no_wrap=True)
    for round_id, record in sorted(fleet.ledger.rounds.items()):
        if not (record.roles or record.has_model or record.failure or record.phases):
            continue
        durations = record.durations()
        result = result_of(record)
        style = {"verified": "green", "MISMATCH": "bold red", "failed": "yellow"}.get(result, "")
        if not record.complete and result != "failed":
            result += "*"
        table.add_row(
            str(round_id),
            Text(result, style),
            *(_seconds(durations.get(phase)) for phase in MESSAGE_PHASES),
            _seconds(record.duration),
            _roles(record, "sum", compact=True),
            _roles(record, "update", compact=True),
            _accepted(record),
            str(_not_accepted(record)),
            size(record.bytes_posted, compact=True),
            "-" if record.max_error is None else f"{record.max_error:.0e}",
        )
    if any(not r.complete for r in fleet.ledger.rounds.values()):
        table.caption = "* joined late: the fleet did not see the round from its start"
        table.caption_justify = "left"
    return table


def _failure_line(record: RoundRecord) -> str:
    return f"round {record.round_id}: failed: {record.failure}"


class LogLines:
    """Plain progress lines (stdout is not a terminal): one per phase, model and failure."""

    def __init__(self, fleet: Fleet, console: Console) -> None:
        self.fleet = fleet
        self.console = console
        fleet.listeners.append(self)

    def __call__(self, kind: str, record: RoundRecord) -> None:
        line = self._line(kind, record)
        if line:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def _line(self, kind: str, record: RoundRecord) -> str:
        if kind == "failure":
            return _failure_line(record)
        if kind == "retrying":
            return f"participants are retrying: {self.fleet.ledger.last_error}"
        if kind == "model":
            if record.verified is True:
                return (
                    f"round {record.round_id}: global model {record.model_id} verified: "
                    f"{record.update_count} updates, max error {record.max_error:.2e} "
                    f"<= {record.tolerance:.2e}"
                )
            if record.verified is False:
                return f"round {record.round_id}: global model MISMATCH: {record.note}"
            return f"round {record.round_id}: global model {record.model_id} ({record.note})"
        if kind == "phase":
            phase = record.phase
            durations = record.durations()
            parts: list[Any] = [f"round {record.round_id}: phase {phase}"]
            previous = [p for p in MESSAGE_PHASES if p in durations]
            if previous:
                last = previous[-1]
                parts.append(f"({last} took {durations[last]:.2f} s)")
            if phase == "update":
                parts.append(
                    f"roles sum {_roles(record, 'sum')}, update {_roles(record, 'update')}, "
                    f"none {record.roles.get('none', 0)}; accepted sum "
                    f"{record.accepted.get('sum', 0)}"
                )
            elif phase == "sum2":
                parts.append(f"accepted update {record.accepted.get('update', 0)}")
            elif phase == "unmask":
                parts.append(f"accepted sum2 {record.accepted.get('sum2', 0)}")
            return " ".join(str(p) for p in parts)
        return ""
