"""``xaynet-test-drive``: N simulated participants in one process against a coordinator.

``--task random`` (the default): participants submit seeded random models, every global model is
checked against the weighted mean of the accepted updates. ``--task digits``: the participants
are the demo page's devices (:mod:`xaynet.testdrive.digits`), training the digits model, so they
can share rounds with browser devices; the display follows the global model's accuracy.

Exit status: 0 ok; 1 a global model did not verify (with ``--verify``; also a complete round
whose model could not be checked); 2 usage error, or rounds the participants cannot serve;
3 the coordinator is unreachable (at start, or after ``--give-up-after`` failures);
4 ``--duration`` ended before ``--rounds`` rounds were complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console, RenderableType
from rich.live import Live
from rich.logging import RichHandler
from rich.table import Table

from xaynet.browser.digits import MODEL_LENGTH as DIGITS_MODEL_LENGTH
from xaynet.errors import ConfigError
from xaynet.testdrive import digits_display
from xaynet.testdrive.digits import DigitsConfig, DigitsDrive
from xaynet.testdrive.display import LogLines, live_panel, size, summary_table
from xaynet.testdrive.fleet import CoordinatorUnreachable, Fleet, FleetConfig, elapsed
from xaynet.testdrive.ledger import Ledger
from xaynet.testdrive.models import ModelSpec, WeightSpec
from xaynet.testdrive.transport import Traffic

__all__ = ["app", "main", "DriveTask", "OK", "MISMATCH", "USAGE", "UNREACHABLE", "INCOMPLETE"]

OK, MISMATCH, USAGE, UNREACHABLE, INCOMPLETE = 0, 1, 2, 3, 4

HELP = """N simulated participants in one process against a Xaynet coordinator.

Each participant has its own keys and does what the rounds ask of it (Sum, Update, Sum2);
every new global model is checked against the weighted mean of the updates the coordinator
accepted. Stops after --rounds complete rounds, after --duration seconds or on Ctrl-C, then
prints a summary per round.

--task digits: the participants are the demo page's devices instead. Each trains the digits
model (softmax regression, 650 values) on its own non-IID shard of the data and submits it
weighted by its number of samples, so they can share rounds with browser devices; the display
shows the global model's accuracy per round. The data comes from the coordinator (GET
/data/digits.json, served with its [web] settings) or from --data. --verify checks the global
model against the weighted mean of the devices' accepted updates; --model, --weight,
--dropout-* and --dump-models do not apply.

Exit status: 0 ok; 1 a global model did not verify (with --verify); 2 usage error, or rounds
the participants cannot serve; 3 the coordinator is unreachable (at start, or after
--give-up-after failures); 4 --duration ended before --rounds rounds were complete.
"""


class DriveTask(enum.StrEnum):
    """What the participants submit."""

    RANDOM = "random"
    DIGITS = "digits"


app = typer.Typer(
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


@app.command(help=HELP)
def run(  # noqa: PLR0917 - typer: one parameter per option
    participants: Annotated[
        int,
        typer.Option(
            "-n", "--participants", min=1, help="Number of participants (devices, with digits)."
        ),
    ] = 10,
    task: Annotated[
        DriveTask,
        typer.Option(
            "--task",
            help="'random': seeded random models (see --model); 'digits': devices training the "
            "demo's digits model, to share rounds with browser devices.",
        ),
    ] = DriveTask.RANDOM,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            exists=True,
            dir_okay=False,
            help="With --task digits: the data set file (web_participant/data/digits.json); "
            "default: GET /data/digits.json from the coordinator.",
        ),
    ] = None,
    url: Annotated[
        str, typer.Option("-u", "--url", help="The coordinator.")
    ] = "http://127.0.0.1:8081",
    rounds: Annotated[
        int | None,
        typer.Option("-r", "--rounds", min=1, help="Stop after this many complete rounds."),
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option("--duration", min=0.001, help="Stop after this many seconds."),
    ] = None,
    model_length: Annotated[
        int | None,
        typer.Option(
            "-l",
            "--model-length",
            min=1,
            help="Model length the participants serve (default: what the rounds announce).",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="'random': seeded random values within the mask bound (at most +-1e6); "
            "or a constant for every value.  [default: random]",
            show_default=False,
        ),
    ] = None,
    weight: Annotated[
        str | None,
        typer.Option(
            "-w",
            "--weight",
            help="Weights of the participants (e.g. samples): 'W', 'LOW:HIGH' (drawn per "
            "participant) or 'W1,W2,...' (cycled). max_weight is the largest.  "
            "[default: 1:100]",
            show_default=False,
        ),
    ] = None,
    dropout_summers: Annotated[
        float,
        typer.Option(
            "--dropout-summers",
            min=0.0,
            max=1.0,
            help="Fraction of each round's summers that vanish after their Sum message.",
        ),
    ] = 0.0,
    dropout_updaters: Annotated[
        float,
        typer.Option(
            "--dropout-updaters",
            min=0.0,
            max=1.0,
            help="Fraction of each round's updaters that skip their Update.",
        ),
    ] = 0.0,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            min=0,
            help="Reproducible identities, weights, models and dropouts (digits: the devices' "
            "training order).",
        ),
    ] = None,
    dump_models: Annotated[
        Path | None,
        typer.Option(
            "--dump-models",
            file_okay=False,
            help="Write every submitted local model, its weight and the global model per "
            "round into this directory (.npy files and manifest.json).",
        ),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify/--no-verify",
            help="Exit with 1 when a global model differs from the weighted mean of the "
            "accepted updates (the fleet must be the only updaters); with --task digits, the "
            "models are checked only with --verify.",
        ),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option("--json", dir_okay=False, help="Write the per-round report as JSON here."),
    ] = None,
    ca_cert: Annotated[
        Path | None,
        typer.Option(
            "--ca-cert", exists=True, dir_okay=False, help="PEM CA bundle to verify TLS with."
        ),
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="Do not verify the TLS certificate (tests only).")
    ] = False,
    client_cert: Annotated[
        Path | None,
        typer.Option(
            "--client-cert",
            exists=True,
            dir_okay=False,
            help="PEM client certificate for mutual TLS (with its key, or see --client-key).",
        ),
    ] = None,
    client_key: Annotated[
        Path | None,
        typer.Option("--client-key", exists=True, dir_okay=False, help="PEM key of --client-cert."),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.001, help="Seconds per HTTP request.")
    ] = 30.0,
    give_up_after: Annotated[
        int | None,
        typer.Option(
            "--give-up-after",
            min=1,
            help="Stop (exit 3) after a participant had this many failed requests in a row "
            "(default: retry forever).",
        ),
    ] = None,
    connections: Annotated[
        int, typer.Option("--connections", min=1, help="Size of the shared connection pool.")
    ] = 16,
    coalesce: Annotated[
        bool,
        typer.Option(
            "--coalesce/--no-coalesce",
            help="Concurrent identical GET /params and GET /sums of the participants share "
            "one request, as through an HTTP cache (--no-coalesce: each sends its own).",
        ),
    ] = True,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--plain",
            help="Live display or log lines (default: live on a terminal).",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[
        int, typer.Option("-v", "--verbose", count=True, help="More log output (-v, -vv).")
    ] = 0,
) -> None:
    out = Console(width=None if sys.stdout.isatty() else 160)
    err = Console(stderr=True)
    if client_key is not None and client_cert is None:
        _usage(err, "--client-key needs --client-cert")
    if insecure and ca_cert is not None:
        _usage(err, "--insecure and --ca-cert exclude each other")
    tls: bool | str = False if insecure else (str(ca_cert) if ca_cert is not None else True)
    if task is DriveTask.DIGITS:
        _digits_options(
            err,
            model=model,
            weight=weight,
            dropout_summers=dropout_summers,
            dropout_updaters=dropout_updaters,
            dump_models=dump_models,
            model_length=model_length,
        )
        try:
            digits_config = DigitsConfig(
                url=url,
                devices=participants,
                rounds=rounds,
                duration=duration,
                data=data,
                seed=seed,
                check=verify,
                timeout=timeout,
                verify=tls,
                client_cert=_client_cert(client_cert, client_key),
                give_up_after=give_up_after,
                connections=connections,
                coalesce=coalesce,
            )
        except ConfigError as exc:
            _usage(err, str(exc))
        live = out.is_terminal if progress is None else progress
        _configure_logging(verbose, live)
        drive = DigitsDrive(digits_config)
        code = asyncio.run(_run_digits(drive, out, err, live=live, verify=verify, report=report))
        raise typer.Exit(code)
    if data is not None:
        _usage(err, "--data needs --task digits")
    try:
        config = FleetConfig(
            url=url,
            participants=participants,
            rounds=rounds,
            duration=duration,
            model_length=model_length,
            model=ModelSpec.parse(model if model is not None else "random"),
            weights=WeightSpec.parse(weight if weight is not None else "1:100"),
            dropout_summers=dropout_summers,
            dropout_updaters=dropout_updaters,
            seed=seed,
            dump_dir=dump_models,
            timeout=timeout,
            verify=tls,
            client_cert=_client_cert(client_cert, client_key),
            give_up_after=give_up_after,
            connections=connections,
            coalesce=coalesce,
        )
    except ConfigError as exc:
        _usage(err, str(exc))
    live = out.is_terminal if progress is None else progress
    _configure_logging(verbose, live)
    fleet = Fleet(config)
    code = asyncio.run(_run(fleet, out, err, live=live, verify=verify, report=report))
    raise typer.Exit(code)


def _digits_options(
    err: Console,
    *,
    model: str | None,
    weight: str | None,
    dropout_summers: float,
    dropout_updaters: float,
    dump_models: Path | None,
    model_length: int | None,
) -> None:
    """Usage errors for the options that --task digits has no use for."""
    reasons = {
        "--model": (model is not None, "the devices submit the models they train"),
        "--weight": (weight is not None, "a device's weight is its number of samples"),
        "--dropout-summers": (dropout_summers > 0, "the devices do not drop out"),
        "--dropout-updaters": (dropout_updaters > 0, "the devices do not drop out"),
        "--dump-models": (dump_models is not None, "use --task random to dump models"),
        "--model-length": (
            model_length not in (None, DIGITS_MODEL_LENGTH),
            f"the digits model has {DIGITS_MODEL_LENGTH} values",
        ),
    }
    for option, (given, why) in reasons.items():
        if given:
            _usage(err, f"{option} does not apply to --task digits ({why})")


def _usage(err: Console, message: str) -> None:
    err.print(f"Error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(USAGE)


def _client_cert(cert: Path | None, key: Path | None) -> str | tuple[str, str] | None:
    if cert is None:
        return None
    return str(cert) if key is None else (str(cert), str(key))


def _configure_logging(verbose: int, live: bool) -> None:
    handler: logging.Handler
    if live:
        handler = RichHandler(console=Console(stderr=True), show_path=False)
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    # One line per participant and event is too much for hundreds of them: the SDK's own log
    # shows errors only unless asked; retries are summed up in the display.
    sdk_level = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO}.get(verbose, logging.DEBUG)
    logging.getLogger("xaynet.sdk").setLevel(sdk_level)
    logging.getLogger("xaynet.testdrive").setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING if verbose < 3 else logging.DEBUG)


class _Signals:
    """SIGINT and SIGTERM ask for a clean stop (``stop``); a second one cancels the run."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self.interrupted = False
        self._loop = asyncio.get_running_loop()
        self._main = asyncio.current_task()

    def _on_signal(self) -> None:
        if self.stop.is_set() and self._main is not None:
            self._main.cancel()  # a second Ctrl-C: do not wait for a clean stop
            return
        self.interrupted = True
        self.stop.set()

    def __enter__(self) -> _Signals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self._loop.add_signal_handler(signum, self._on_signal)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self._loop.remove_signal_handler(signum)


async def _drive(
    out: Console,
    err: Console,
    *,
    live: bool,
    panel: Callable[[], RenderableType],
    log_lines: Callable[[], object],
    run: Callable[[asyncio.Event], Awaitable[object]],
) -> tuple[int, bool]:
    """Run either task with its display until it stops; (exit status so far, interrupted)."""
    loop = asyncio.get_running_loop()
    code = OK
    display: Live | None = None
    refresher: asyncio.Task[None] | None = None
    stop = asyncio.Event()
    with _Signals(stop) as signals:
        if live:
            display = Live(panel(), console=out, auto_refresh=False)
            display.start()
            refresher = loop.create_task(_refresh(display, panel))
        else:
            log_lines()
        try:
            await run(stop)
        except CoordinatorUnreachable as exc:
            err.print(f"Error: {exc}", markup=False, highlight=False, soft_wrap=True)
            code = UNREACHABLE
        except ConfigError as exc:
            err.print(f"Error: {exc}", markup=False, highlight=False, soft_wrap=True)
            code = USAGE
        finally:
            if refresher is not None:
                refresher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await refresher
            if display is not None:
                display.update(panel(), refresh=True)
                display.stop()
    return code, signals.interrupted


async def _refresh(display: Live, panel: Callable[[], RenderableType]) -> None:
    while True:
        display.update(panel(), refresh=True)
        await asyncio.sleep(0.25)


async def _run(
    fleet: Fleet, out: Console, err: Console, *, live: bool, verify: bool, report: Path | None
) -> int:
    config = fleet.config
    out.print(
        f"xaynet-test-drive: {len(fleet.members)} participants against {config.url}, seed "
        f"{fleet.seed}" + (f", {config.rounds} rounds" if config.rounds else ""),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    code, interrupted = await _drive(
        out,
        err,
        live=live,
        panel=lambda: live_panel(fleet),
        log_lines=lambda: LogLines(fleet, out),
        run=fleet.run,
    )
    if code == OK:
        code = _outcome(fleet, err, verify=verify, interrupted=interrupted)
    _print_summary(fleet, out)
    if report is not None:
        _write_report(fleet, report, code)
    return code


async def _run_digits(
    drive: DigitsDrive, out: Console, err: Console, *, live: bool, verify: bool, report: Path | None
) -> int:
    """``_run`` for --task digits: the same exit statuses, its own display."""
    config = drive.config
    out.print(
        f"xaynet-test-drive --task digits: {config.devices} devices against {config.url}, "
        f"data {drive.data_source}, seed {drive.seed}"
        + (f", {config.rounds} rounds" if config.rounds else ""),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    code, interrupted = await _drive(
        out,
        err,
        live=live,
        panel=lambda: digits_display.live_panel(drive),
        log_lines=lambda: digits_display.DigitsLines(drive, out),
        run=drive.run,
    )
    if code == OK:
        code = _ledger_outcome(
            drive.ledger,
            err,
            verify=verify,
            interrupted=interrupted,
            rounds=config.rounds,
            done=drive.done,
            duration=config.duration,
        )
    out.print(digits_display.summary_table(drive))
    _print_traffic(drive.traffic, out)
    totals = drive.ledger.totals()
    latest = drive.ledger.latest_model
    accuracy = (
        "" if latest is None else f", last accuracy {digits_display.percent(latest.accuracy)}"
    )
    checks = f"{totals['rounds_verified']} verified, {len(totals['mismatches'])} mismatches, "
    timings = digits_display.timing_line(drive)
    out.print(
        f"{totals['rounds_completed']} rounds complete{accuracy}, "
        + (checks if verify else "")
        + f"{totals['rounds_failed']} failed; "
        + (f"device work per run: {timings}; " if timings else "")
        + f"{elapsed(drive):.1f} s; seed {drive.seed}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if report is not None:
        data = digits_display.report_json(drive, code)
        report.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return code


def _outcome(fleet: Fleet, err: Console, *, verify: bool, interrupted: bool) -> int:
    config = fleet.config
    return _ledger_outcome(
        fleet.ledger,
        err,
        verify=verify,
        interrupted=interrupted,
        rounds=config.rounds,
        done=fleet.done,
        duration=config.duration,
    )


def _ledger_outcome(
    ledger: Ledger,
    err: Console,
    *,
    verify: bool,
    interrupted: bool,
    rounds: int | None,
    done: bool,
    duration: float | None,
) -> int:
    if verify:
        unchecked = [r.round_id for r in ledger.completed if r.verified is None]
        if ledger.mismatches or unchecked:
            for round_id in ledger.mismatches:
                err.print(
                    f"round {round_id}: the global model does not verify: "
                    f"{ledger.round(round_id).note}",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
            for round_id in unchecked:
                err.print(
                    f"round {round_id}: the global model could not be checked: "
                    f"{ledger.round(round_id).note}",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
            return MISMATCH
    if rounds is not None and not done and not interrupted:
        err.print(
            f"Error: {len(ledger.completed)} of {rounds} rounds complete when the run ended "
            f"(--duration {duration})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return INCOMPLETE
    return OK


def _print_summary(fleet: Fleet, out: Console) -> None:
    out.print(summary_table(fleet))
    _print_traffic(fleet.traffic, out)
    totals = fleet.ledger.totals()
    out.print(
        f"{totals['rounds_completed']} rounds complete, {totals['rounds_verified']} verified, "
        f"{len(totals['mismatches'])} mismatches, {totals['rounds_failed']} failed; "
        f"{size(totals['bytes_posted'])} sent in {totals['posts']} messages; "
        f"{elapsed(fleet):.1f} s; seed {fleet.seed}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _print_traffic(traffic: Traffic, out: Console) -> None:
    table = Table(title="HTTP bodies", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("request", "count", "sent", "received"):
        table.add_column(name, justify="left" if name == "request" else "right")
    for key in sorted(traffic.requests):
        table.add_row(
            key,
            str(traffic.requests[key]),
            size(traffic.sent[key]),
            size(traffic.received[key]),
        )
    out.print(table)


def _write_report(fleet: Fleet, path: Path, code: int) -> None:
    config = fleet.config
    data: dict[str, Any] = {
        "url": config.url,
        "participants": len(fleet.members),
        "seed": fleet.seed,
        "weights": str(config.weights),
        "max_weight": fleet.max_weight,
        "model": str(config.model),
        "dropout_summers": fleet.dropout_summers,
        "dropout_updaters": fleet.dropout_updaters,
        "elapsed": elapsed(fleet),
        "exit_code": code,
        "totals": fleet.ledger.totals(),
        "traffic": fleet.traffic.to_json(),
        "rounds": [record.to_json() for _, record in sorted(fleet.ledger.rounds.items())],
    }
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    """The console script."""
    app()
