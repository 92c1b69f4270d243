"""``xaynet-test-drive``: N simulated participants in one process against a coordinator.

Exit status: 0 ok; 1 a global model did not verify (with ``--verify``; also a complete round
whose model could not be checked); 2 usage error, or rounds the participants cannot serve;
3 the coordinator is unreachable (at start, or after ``--give-up-after`` failures);
4 ``--duration`` ended before ``--rounds`` rounds were complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler
from rich.table import Table

from xaynet.errors import ConfigError
from xaynet.testdrive.display import LogLines, live_panel, size, summary_table
from xaynet.testdrive.fleet import CoordinatorUnreachable, Fleet, FleetConfig, elapsed
from xaynet.testdrive.models import ModelSpec, WeightSpec

__all__ = ["app", "main", "OK", "MISMATCH", "USAGE", "UNREACHABLE", "INCOMPLETE"]

OK, MISMATCH, USAGE, UNREACHABLE, INCOMPLETE = 0, 1, 2, 3, 4

HELP = """N simulated participants in one process against a Xaynet coordinator.

Each participant has its own keys and does what the rounds ask of it (Sum, Update, Sum2);
every new global model is checked against the weighted mean of the updates the coordinator
accepted. Stops after --rounds complete rounds, after --duration seconds or on Ctrl-C, then
prints a summary per round.

Exit status: 0 ok; 1 a global model did not verify (with --verify); 2 usage error, or rounds
the participants cannot serve; 3 the coordinator is unreachable (at start, or after
--give-up-after failures); 4 --duration ended before --rounds rounds were complete.
"""

app = typer.Typer(
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


@app.command(help=HELP)
def run(  # noqa: PLR0917 - typer: one parameter per option
    participants: Annotated[
        int, typer.Option("-n", "--participants", min=1, help="Number of participants.")
    ] = 10,
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
        str,
        typer.Option(
            "--model",
            help="'random': seeded random values within the mask bound (at most +-1e6); "
            "or a constant for every value.",
        ),
    ] = "random",
    weight: Annotated[
        str,
        typer.Option(
            "-w",
            "--weight",
            help="Weights of the participants (e.g. samples): 'W', 'LOW:HIGH' (drawn per "
            "participant) or 'W1,W2,...' (cycled). max_weight is the largest.",
        ),
    ] = "1:100",
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
            "--seed", min=0, help="Reproducible identities, weights, models and dropouts."
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
            "accepted updates (the fleet must be the only updaters).",
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
    try:
        config = FleetConfig(
            url=url,
            participants=participants,
            rounds=rounds,
            duration=duration,
            model_length=model_length,
            model=ModelSpec.parse(model),
            weights=WeightSpec.parse(weight),
            dropout_summers=dropout_summers,
            dropout_updaters=dropout_updaters,
            seed=seed,
            dump_dir=dump_models,
            timeout=timeout,
            verify=False if insecure else (str(ca_cert) if ca_cert is not None else True),
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


async def _run(
    fleet: Fleet, out: Console, err: Console, *, live: bool, verify: bool, report: Path | None
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    main = asyncio.current_task()
    interrupted = False

    def on_signal() -> None:
        nonlocal interrupted
        if stop.is_set() and main is not None:
            main.cancel()  # a second Ctrl-C: do not wait for a clean stop
            return
        interrupted = True
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, on_signal)
    config = fleet.config
    out.print(
        f"xaynet-test-drive: {len(fleet.members)} participants against {config.url}, seed "
        f"{fleet.seed}" + (f", {config.rounds} rounds" if config.rounds else ""),
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    code = OK
    display: Live | None = None
    refresher: asyncio.Task[None] | None = None
    if live:
        display = Live(live_panel(fleet), console=out, auto_refresh=False)
        display.start()
        refresher = loop.create_task(_refresh(display, fleet))
    else:
        LogLines(fleet, out)
    try:
        await fleet.run(stop)
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
            display.update(live_panel(fleet), refresh=True)
            display.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
    if code == OK:
        code = _outcome(fleet, err, verify=verify, interrupted=interrupted)
    _print_summary(fleet, out)
    if report is not None:
        _write_report(fleet, report, code)
    return code


async def _refresh(display: Live, fleet: Fleet) -> None:
    while True:
        display.update(live_panel(fleet), refresh=True)
        await asyncio.sleep(0.25)


def _outcome(fleet: Fleet, err: Console, *, verify: bool, interrupted: bool) -> int:
    ledger = fleet.ledger
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
    rounds = fleet.config.rounds
    if rounds is not None and not fleet.done and not interrupted:
        err.print(
            f"Error: {len(ledger.completed)} of {rounds} rounds complete when the run ended "
            f"(--duration {fleet.config.duration})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return INCOMPLETE
    return OK


def _print_summary(fleet: Fleet, out: Console) -> None:
    out.print(summary_table(fleet))
    traffic = fleet.traffic
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
