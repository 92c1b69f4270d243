"""``xaynet-coordinator``: load the settings, set up logging, serve the API with uvicorn.

On SIGTERM or Ctrl-C uvicorn stops accepting connections, waits up to
``GRACEFUL_SHUTDOWN_SECONDS`` for open requests, runs the app's shutdown and then re-raises the
signal, so the process ends as killed by that signal (status 143 for SIGTERM in a shell).
Other exit statuses: 2 for invalid settings or command-line usage, 3 when the app fails to start.
"""

from __future__ import annotations

import contextlib
import json
import logging
import ssl
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from xaynet_coordinator import __version__
from xaynet_coordinator.settings import LogSettings, Settings, SettingsError, load_settings

__all__ = ["app", "main", "configure_logging", "uvicorn_options", "run_server", "JsonFormatter"]

#: Seconds uvicorn waits for open requests (and event streams) after SIGTERM before it closes
#: them; the app's shutdown runs after that.
GRACEFUL_SHUTDOWN_SECONDS = 5

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    help="The Xaynet PET coordinator: runs federated-learning rounds over HTTP.",
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the traceback, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: LogSettings) -> None:
    """Send every log record (uvicorn's included) to stderr in the configured format."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level.upper())
    # uvicorn's loggers keep no handlers of their own (log_config=None) and propagate to root.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run`` for these settings."""
    api = settings.api
    options: dict[str, Any] = {
        "host": api.host,
        "port": api.port,
        "log_config": None,  # configure_logging() has set up the handlers
        "log_level": settings.log.level,
        "lifespan": "on",
        "server_header": False,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
    }
    if api.tls_certificate is not None:
        options["ssl_certfile"] = str(api.tls_certificate)
        options["ssl_keyfile"] = str(api.tls_key)
    if api.tls_client_auth is not None:
        options["ssl_ca_certs"] = str(api.tls_client_auth)
        options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return options


def run_server(application: Any, **options: Any) -> None:
    """``uvicorn.run``, except that a signal first ends the app's event streams."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # Event streams never end by themselves: close them now, so that the graceful
            # shutdown does not wait GRACEFUL_SHUTDOWN_SECONDS for them.
            close = getattr(application.state, "close_event_streams", None)
            if close is not None:
                close()
            super().handle_exit(sig, frame)

    server = Server(uvicorn.Config(application, **options))
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        sys.exit(3)  # as uvicorn.run: the app failed to start (the log says why)


def _serve(settings: Settings) -> None:
    # Imported here: the CLI (and --check) must work without loading the whole service.

    from xaynet_coordinator.app import create_app

    api = settings.api
    scheme = "https" if api.tls else "http"
    host = f"[{api.host}]" if ":" in api.host else api.host
    logging.getLogger("xaynet_coordinator").info(
        "xaynet-coordinator %s: %s://%s:%d, storage %s, model store %s",
        __version__,
        scheme,
        host,
        api.port,
        settings.storage.backend,
        settings.models.backend,
    )
    run_server(create_app(settings), **uvicorn_options(settings))


def _print_check(settings: Settings, config: Path | None) -> None:
    console = Console(soft_wrap=True)
    source = str(config) if config is not None else "environment only"
    table = Table(title=f"configuration OK ({source})", title_justify="left")
    table.add_column("key", no_wrap=True)
    table.add_column("value")
    for key, value in settings.describe():
        table.add_row(key, value)
    console.print(table)

    sizes = Table(title="masking", title_justify="left")
    for column in ("config", "names", "order bits", "bytes/element", "Nmax"):
        sizes.add_column(column)
    pair = settings.mask.pair()
    for half, mask in (("vect", pair.vect), ("unit", pair.unit)):
        sizes.add_row(
            f"mask.{half}",
            str(mask),
            str(mask.order.bit_length()),
            str(mask.bytes_per_element),
            str(mask.max_models),
        )
    console.print(sizes)
    length = settings.model.length
    # config (4) + count (4) + elements, then the unit: config (4) + one element
    masked = 8 + length * pair.vect.bytes_per_element + 4 + pair.unit.bytes_per_element
    console.print(
        f"a masked model of {length} weights is {masked} bytes (raw float32: {4 * length} bytes)",
        markup=False,
        highlight=False,
    )


@app.command()
def run(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="TOML settings file; XAYNET__SECTION__KEY variables override it.",
            dir_okay=False,
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Validate the settings, print them and exit."),
    ] = False,
) -> None:
    """Serve the coordinator API (or, with --check, only validate the settings)."""
    try:
        settings = load_settings(config)
    except SettingsError as exc:
        message = exc.message
        if config is None:
            message += "\n(no --config file given: only XAYNET__... variables were read)"
        Console(stderr=True, soft_wrap=True).print(
            message, style="red", markup=False, highlight=False
        )
        raise typer.Exit(2) from None
    if check:
        _print_check(settings, config)
        return
    configure_logging(settings.log)
    _serve(settings)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="xaynet-coordinator")
