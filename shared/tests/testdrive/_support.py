"""The real coordinator for the test-drive tests, on either storage backend.

Import only after ``pytest.importorskip("httpx")``. Phases are short (a round of 20
participants takes about a second), and an Update phase without enough updates times out
after 2 s, so the coordinator starts the next round soon.
"""

from __future__ import annotations

import datetime
import ipaddress
import signal
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from coordinator_process import (
    ROOT,
    config_toml,
    delete_prefix,
    free_port,
    redis_client,
    web_toml,
)
from sdk._coordinator import Coordinator

LENGTH = 50
#: seconds an Update phase waits for its minimum of updates
UPDATE_TIME_MAX = 2.0


def config_text(
    port: int, models: Path, *, backend: str, key_prefix: str, tls: Pki | None = None
) -> str:
    https = ""
    if tls is not None:
        https = (
            f'tls_certificate = "{tls.server_cert}"\ntls_key = "{tls.server_key}"\n'
            f'tls_client_auth = "{tls.ca}"\n'
        )
    return config_toml(
        port,
        models_dir=models,
        model_length=LENGTH,
        sum_phase={"probability": 0.3, "count": (1, 100), "time": (0.3, 5)},
        update_phase={"probability": 0.9, "count": (3, 100), "time": (0.5, UPDATE_TIME_MAX)},
        sum2_phase={"count": (1, 100), "time": (0.3, 5)},
        backend=backend,
        key_prefix=key_prefix,
        api_extra=https,
    )


@dataclass(frozen=True)
class Pki:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (PEM files)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_pki(directory: Path) -> Pki:
    """Throw-away certificates for a mutual-TLS test (ECDSA P-256, valid for a day)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    def issue(
        subject: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[x509.Name, Any] | None
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(issuer[0] if issuer else name(subject))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )
        if issuer is None:
            builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
        elif subject == "server":
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                False,
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        else:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False
            )
        return builder.sign(issuer[1] if issuer else key, hashes.SHA256())

    def write(path: Path, cert: x509.Certificate | None, key: Any = None) -> Path:
        if cert is not None:
            path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        else:
            path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        return path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = issue("test-drive CA", ca_key, None)
    keys = {role: ec.generate_private_key(ec.SECP256R1()) for role in ("server", "client")}
    certs = {role: issue(role, key, (ca.subject, ca_key)) for role, key in keys.items()}
    return Pki(
        ca=write(directory / "ca.pem", ca),
        server_cert=write(directory / "server.pem", certs["server"]),
        server_key=write(directory / "server.key", None, keys["server"]),
        client_cert=write(directory / "client.pem", certs["client"]),
        client_key=write(directory / "client.key", None, keys["client"]),
    )


class TlsCoordinator(Coordinator):
    """The coordinator over HTTPS, requiring client certificates."""

    scheme = "https"

    def __init__(self, config: Path, port: int, log_path: Path, *, pki: Pki) -> None:
        super().__init__(config, port, log_path)
        self.pki = pki

    def _client_options(self) -> dict[str, Any]:
        context = ssl.create_default_context(cafile=str(self.pki.ca))
        context.load_cert_chain(str(self.pki.client_cert), str(self.pki.client_key))
        return {"verify": context}


@contextmanager
def coordinator(directory: Path, backend: str, *, tls: bool = False) -> Iterator[Coordinator]:
    """A running coordinator; Redis keys under a prefix of its own, deleted afterwards."""
    client = redis_client() if backend == "redis" else None
    prefix = f"xaynet-test-drive-{uuid.uuid4().hex[:12]}:"
    port = free_port()
    pki = make_pki(directory) if tls else None
    config = directory / "coordinator.toml"
    config.write_text(
        config_text(port, directory / "models", backend=backend, key_prefix=prefix, tls=pki),
        encoding="utf-8",
    )
    log = directory / "coordinator.log"
    process = TlsCoordinator(config, port, log, pki=pki) if pki else Coordinator(config, port, log)
    try:
        process.start()
        yield process
    finally:
        process.kill()
        if client is not None:
            delete_prefix(client, prefix)
            client.close()


def run_cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """``python -m xaynet.testdrive ARGS`` (the console script's code), output captured.

    A run that outlives ``timeout`` fails the test with every thread's stack (faulthandler, on
    SIGABRT) and the output so far: a hang must say where it hangs.
    """
    command = [sys.executable, "-X", "faulthandler", "-m", "xaynet.testdrive", *args]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            try:
                stdout, stderr = process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, stderr = process.communicate()
            pytest.fail(
                f"xaynet-test-drive {' '.join(args)} still ran after {timeout} s\n"
                f"--- stdout ---\n{stdout[-4000:]}\n--- stderr (stacks) ---\n{stderr[-12000:]}",
                pytrace=False,
            )
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def global_model_file(directory: Path, model_id: str) -> Path:
    """Where the coordinator stored a global model (raw little-endian float64)."""
    return directory / "models" / model_id


# -- the digits task -------------------------------------------------------------------------------

DIGITS_JSON = ROOT / "web_participant" / "data" / "digits.json"
DIGITS_LENGTH = 650


def digits_config_text(port: int, directory: Path, *, web: bool) -> str:
    """Rounds of about a second for a handful of digits devices; ``web``: serve the page too."""
    extra = ""
    if web:
        # The devices never download the browser's wheel; the coordinator only wants one.
        wheels = directory / "wheels"
        wheels.mkdir(exist_ok=True)
        (wheels / "xaynet-0.0.0-py3-none-any.whl").write_bytes(b"")
        extra = web_toml(wheels)
    return config_toml(
        port,
        models_dir=directory / "models",
        model_length=DIGITS_LENGTH,
        sum_phase={"probability": 0.3, "count": (1, 100), "time": (0.3, 2)},
        update_phase={"probability": 0.9, "count": (3, 100), "time": (0.5, UPDATE_TIME_MAX)},
        sum2_phase={"count": (1, 100), "time": (0.3, 5)},
        extra=extra,
    )


@contextmanager
def digits_coordinator(directory: Path, *, web: bool) -> Iterator[Coordinator]:
    """A running coordinator for the digits model (memory storage)."""
    port = free_port()
    config = directory / "coordinator.toml"
    config.write_text(digits_config_text(port, directory, web=web), encoding="utf-8")
    process = Coordinator(config, port, directory / "coordinator.log")
    try:
        process.start()
        yield process
    finally:
        process.kill()
