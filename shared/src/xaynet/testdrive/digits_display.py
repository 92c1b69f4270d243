"""What ``xaynet-test-drive --task digits`` shows: the global model's accuracy round by round."""

from __future__ import annotations

import math
import time
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from xaynet.testdrive.digits import DigitsDrive, DigitsRound
from xaynet.testdrive.display import result_of
from xaynet.testdrive.fleet import elapsed

__all__ = ["live_panel", "summary_table", "DigitsLines", "report_json", "percent", "timing_line"]

#: Rounds the summary table lists (the newest); a long run has thousands.
SUMMARY_ROUNDS = 50


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _roles(record: DigitsRound) -> str:
    roles = record.roles
    return f"sum {roles['sum']}, update {roles['update']}, idle {roles['none']}"


def _check(record: DigitsRound) -> str:
    if record.verified is True:
        return f"verified (max error {record.max_error:.1e})"
    if record.verified is False:
        return f"MISMATCH: {record.note}"
    return ""


def _result(record: DigitsRound, checked: bool) -> str:
    """As for the random task; without --verify, a round with a global model says ``model``."""
    result = result_of(record)
    return "model" if result == "unchecked" and not checked else result


def timing_line(drive: DigitsDrive) -> str:
    """Mean seconds per device task: ``train 0.041 s, mask 0.012 s, ...``."""
    parts = []
    for task in ("train", "mask", "aggregate", "post"):
        samples = drive.timings.get(task)
        if samples:
            parts.append(f"{task} {math.fsum(samples) / len(samples):.3f} s")
    return ", ".join(parts)


def live_panel(drive: DigitsDrive) -> RenderableType:
    """The panel redrawn while the devices run."""
    ledger, config = drive.ledger, drive.config
    head = Text.assemble(
        ("xaynet-test-drive --task digits ", "bold"),
        f"{config.url}  {config.devices} devices  seed {drive.seed}  ",
        f"elapsed {elapsed(drive):.0f} s",
    )
    goal = f" of {config.rounds}" if config.rounds else ""
    progress = Text.assemble(
        ("rounds complete ", "dim"),
        f"{len(ledger.completed)}{goal}",
        ("  failed ", "dim"),
        str(len(ledger.failed)),
    )
    if config.check:
        verified = sum(1 for r in ledger.completed if r.verified)
        progress.append_text(
            Text.assemble(
                ("  verified ", "dim"),
                (str(verified), "green"),
                ("  mismatches ", "dim"),
                (str(len(ledger.mismatches)), "red" if ledger.mismatches else ""),
            )
        )
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    if ledger.round_id is not None:
        record = ledger.round(ledger.round_id)
        grid.add_row("round", f"{ledger.round_id}   phase [bold]{ledger.phase or '?'}[/bold]")
        grid.add_row("roles", _roles(record))
    else:
        grid.add_row("round", "waiting for the coordinator")
    latest = ledger.latest_model
    if latest is not None:
        loss = "-" if latest.loss is None else f"{latest.loss:.3f}"
        grid.add_row(
            "global model",
            f"round {latest.round_id}: accuracy [bold]{percent(latest.accuracy)}[/bold]   "
            f"loss {loss}",
        )
    timings = timing_line(drive)
    if timings:
        grid.add_row("device work", timings)
    if ledger.last_error and ledger.last_error_at is not None:
        age = time.monotonic() - ledger.last_error_at
        if age < 30:
            grid.add_row("last error", Text(f"{ledger.last_error} ({age:.0f} s ago)", "yellow"))
    return Panel(Group(head, progress, grid), expand=False)


def summary_table(drive: DigitsDrive) -> Table:
    """Per round (the newest :data:`SUMMARY_ROUNDS`): result, accuracy, roles, updates."""
    table = Table(
        title="test-drive summary (digits): the global model's accuracy and loss on the "
        "held-out images; devices summing S, updating U, idle I; messages accepted "
        "(sum/update/sum2); max error of the check (--verify)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        pad_edge=False,
    )
    for name in ("round", "result", "accuracy", "loss", "S", "U", "I", "s/u/s2", "error"):
        table.add_column(name, justify="left" if name == "result" else "right", no_wrap=True)
    shown = [
        record
        for _, record in sorted(drive.ledger.rounds.items())
        if record.roles or record.has_model or record.failure or record.phases
    ]
    for record in shown[-SUMMARY_ROUNDS:]:
        result = _result(record, drive.config.check)
        style = {"verified": "green", "MISMATCH": "bold red", "failed": "yellow"}.get(result, "")
        if not record.complete and result != "failed":
            result += "*"
        table.add_row(
            str(record.round_id),
            Text(result, style),
            percent(record.accuracy),
            "-" if record.loss is None else f"{record.loss:.3f}",
            str(record.roles["sum"]),
            str(record.roles["update"]),
            str(record.roles["none"]),
            "/".join(str(record.accepted[task]) for task in ("sum", "update", "sum2")),
            "-" if record.max_error is None else f"{record.max_error:.0e}",
        )
    notes = []
    if len(shown) > SUMMARY_ROUNDS:
        notes.append(f"{len(shown) - SUMMARY_ROUNDS} earlier rounds not shown")
    if any(not r.complete for r in shown):
        notes.append("* joined late: the fleet did not see the round from its start")
    if notes:
        table.caption = "; ".join(notes)
        table.caption_justify = "left"
    return table


class DigitsLines:
    """Plain progress lines (stdout is not a terminal): one per global model and failure."""

    def __init__(self, drive: DigitsDrive, console: Console) -> None:
        self.drive = drive
        self.console = console
        drive.listeners.append(self)

    def __call__(self, kind: str, record: DigitsRound) -> None:
        line = self._line(kind, record)
        if line:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def _line(self, kind: str, record: DigitsRound) -> str:
        if kind == "failure":
            return f"round {record.round_id}: failed: {record.failure}; roles {_roles(record)}"
        if kind == "retrying":
            return f"devices are retrying: {self.drive.ledger.last_error}"
        if kind != "model":
            return ""
        if record.model_id is None:
            return f"round {record.round_id}: {record.note}"
        loss = "" if record.loss is None else f" (loss {record.loss:.3f})"
        parts = [
            f"round {record.round_id}: global model accuracy {percent(record.accuracy)}{loss}",
            f"roles {_roles(record)}",
            f"{record.update_count} updates from the fleet accepted",
        ]
        check = _check(record)
        if check:
            parts.append(check)
        elif record.note and self.drive.config.check:
            parts.append(record.note)
        return "; ".join(parts)


def report_json(drive: DigitsDrive, code: int) -> dict[str, Any]:
    """What ``--json`` writes for a digits run."""
    config = drive.config
    dataset = drive.dataset
    return {
        "task": "digits",
        "url": config.url,
        "devices": config.devices,
        "seed": drive.seed,
        "data": drive.data_source,
        "train_images": None if dataset is None else len(dataset.y_train),
        "test_images": None if dataset is None else len(dataset.y_test),
        "checked": config.check,
        "elapsed": elapsed(drive),
        "exit_code": code,
        "totals": drive.ledger.totals(),
        "timings": {
            task: {"count": len(samples), "mean": math.fsum(samples) / len(samples)}
            for task, samples in sorted(drive.timings.items())
            if samples
        },
        "traffic": drive.traffic.to_json(),
        "rounds": [record.to_json() for _, record in sorted(drive.ledger.rounds.items())],
    }
