"""HttpTransport against a mock coordinator: status handling, retries with backoff, SSE, TLS."""

from __future__ import annotations

import pytest

pytest.importorskip("httpx")
pytest.importorskip("numpy")

import asyncio
import datetime
import random
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from participant._fixtures import make_params

from xaynet.errors import DecodeError
from xaynet.participant import Backoff
from xaynet.participant.transport import (
    EventsNotSupported,
    PostOutcome,
    TransportError,
)
from xaynet.sdk.http import HttpTransport, ssl_context

PARAMS = make_params()
PK = bytes(range(32))
Handler = Callable[[httpx.Request], httpx.Response]


def transport(handler: Handler, **kwargs: Any) -> tuple[HttpTransport, list[float]]:
    """A transport on a mock coordinator; the returned list collects the retry sleeps."""
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://c")
    settings: dict[str, Any] = {
        "client": client,
        "sleep": sleep,
        "rng": random.Random(0),
        "backoff": Backoff(initial=1, factor=2, maximum=3, jitter=0),
    }
    settings.update(kwargs)
    return HttpTransport("http://c/", **settings), sleeps


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


# -- GET ------------------------------------------------------------------------------------------


def test_params_with_etags() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        etag = request.headers.get("if-none-match")
        seen.append(etag)
        if etag == '"v1"':
            return httpx.Response(304, headers={"ETag": '"v1"'})
        return httpx.Response(200, json=PARAMS.to_json_dict(), headers={"ETag": '"v1"'})

    t, _ = transport(handler)
    assert run(t.get_params(None)) == (PARAMS, '"v1"')
    assert run(t.get_params('"v1"')) == (None, '"v1"')
    assert seen == [None, '"v1"']


def test_no_round_yet() -> None:
    t, _ = transport(lambda _r: httpx.Response(204))
    assert run(t.get_params(None)) == (None, None)
    assert run(t.get_sums()) is None
    assert run(t.get_seeds(PK)) is None
    assert run(t.get_model()) is None


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(200, text="nope"), DecodeError),
        (httpx.Response(200, json={"round_id": 1}), DecodeError),
        (httpx.Response(404, text="not here"), TransportError),
    ],
)
def test_bad_params_answers(response: httpx.Response, error: type[Exception]) -> None:
    t, _ = transport(lambda _r: response)
    with pytest.raises(error):
        run(t.get_params(None))


def test_sums_and_seeds() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/sums":
            return httpx.Response(200, json={PK.hex(): "ff" * 32})
        assert request.url.params["pk"] == PK.hex()
        return httpx.Response(200, json={PK.hex(): "00" * 80})

    t, _ = transport(handler)
    assert run(t.get_sums()) == {PK: b"\xff" * 32}
    assert run(t.get_seeds(PK)) == {PK: bytes(80)}


def test_the_model_comes_as_raw_float64() -> None:
    values = np.array([0.5, -1.25, 3.0])

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["accept"] == "application/octet-stream"
        headers = {
            "content-type": "application/octet-stream",
            "X-Xaynet-Round": "7",
            "X-Xaynet-Model-Id": "7_abc",
        }
        return httpx.Response(200, content=values.astype("<f8").tobytes(), headers=headers)

    t, _ = transport(handler)
    model = run(t.get_model())
    assert model.key == (7, "7_abc")
    np.testing.assert_array_equal(model.values, values)


def test_an_initial_model_and_a_json_model() -> None:
    raw = {"content-type": "application/octet-stream", "X-Xaynet-Round": "0"}
    initial = {**raw, "X-Xaynet-Model-Id": "initial"}
    t, _ = transport(lambda _r: httpx.Response(200, content=b"\0" * 8, headers=initial))
    assert run(t.get_model()).key == (0, None)
    body = {"round_id": 2, "model_id": "2_x", "model": [1.0, 2.0]}
    t, _ = transport(lambda _r: httpx.Response(200, json=body))
    model = run(t.get_model())
    assert model.key == (2, "2_x")
    np.testing.assert_array_equal(model.values, [1.0, 2.0])
    t, _ = transport(lambda _r: httpx.Response(200, content=b"\0" * 7, headers=raw))
    with pytest.raises(DecodeError):
        run(t.get_model())


# -- retries --------------------------------------------------------------------------------------


def failing(times: int, then: httpx.Response, error: Exception | None = None) -> Handler:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] <= times:
            if error is not None:
                raise error
            return httpx.Response(502, text="bad gateway")
        return then

    return handler


def test_network_errors_are_retried_with_backoff() -> None:
    ok = httpx.Response(200, json={})
    t, sleeps = transport(failing(2, ok, httpx.ConnectError("refused")), retries=2)
    assert run(t.get_sums()) == {}
    assert sleeps == [1, 2]


def test_5xx_are_retried_then_reported() -> None:
    t, sleeps = transport(failing(5, httpx.Response(200, json={})), retries=1)
    with pytest.raises(TransportError, match=r"GET http://c/sums: HTTP 502 \(after 2 attempts\)"):
        run(t.get_sums())
    assert sleeps == [1]


def test_retries_give_up_with_the_network_error() -> None:
    t, _ = transport(failing(9, httpx.Response(200), httpx.ReadTimeout("slow")), retries=0)
    with pytest.raises(TransportError, match="ReadTimeout: slow"):
        run(t.get_params(None))


def test_jitter_comes_from_the_injected_generator() -> None:
    policy = Backoff(initial=1, factor=2, maximum=8, jitter=0.5)
    ok = httpx.Response(200, json={})
    one, sleeps_one = transport(failing(3, ok), retries=3, backoff=policy, rng=random.Random(4))
    two, sleeps_two = transport(failing(3, ok), retries=3, backoff=policy, rng=random.Random(4))
    run(one.get_sums())
    run(two.get_sums())
    assert sleeps_one == sleeps_two
    assert all(0.5 * c <= s <= c for s, c in zip(sleeps_one, [1, 2, 4], strict=True))


# -- POST -----------------------------------------------------------------------------------------


def test_post_outcomes_are_protocol_answers() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["content-type"] == "application/octet-stream"
        assert request.content == b"sealed"
        body = {"status": 503, "reason": "storage_unavailable", "detail": "redis"}
        return httpx.Response(503, json=body)

    t, sleeps = transport(handler)
    assert run(t.post_message(b"sealed")) == PostOutcome(503, "storage_unavailable", "redis")
    assert sleeps == [], "a 5xx with a reason is not retried by the transport"


def test_post_without_a_reason() -> None:
    t, _ = transport(lambda _r: httpx.Response(404, text="no such path"))
    assert run(t.post_message(b"x")) == PostOutcome(404, "http_404", "no such path")
    t, sleeps = transport(failing(9, httpx.Response(202)), retries=1)
    with pytest.raises(TransportError, match="POST http://c/message: HTTP 502"):
        run(t.post_message(b"x"))
    assert sleeps == [1]


# -- events ---------------------------------------------------------------------------------------


def test_events_are_parsed_and_the_stream_reconnects() -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            text = 'event: phase\ndata: {"phase": "sum", "round_id": 1}\n\nevent: x\ndata: raw\n\n'
            return httpx.Response(200, text=text, headers={"content-type": "text/event-stream"})
        if calls["n"] == 2:
            raise httpx.ConnectError("refused")
        return httpx.Response(404)

    t, sleeps = transport(handler)

    events: list[tuple[str, Any]] = []

    async def gather() -> None:
        async for event in t.events():
            events.append(event)

    with pytest.raises(EventsNotSupported):
        run(gather())
    assert events[:3] == [
        ("open", {}),
        ("phase", {"phase": "sum", "round_id": 1}),
        ("x", "raw"),
    ]
    assert events[3] == ("error", {"error": "the event stream ended"})
    assert events[4][0] == "error"
    assert "ConnectError" in events[4][1]["error"]
    assert len(events) == 5
    assert sleeps == [1, 2], "backoff from the last successful connection on"


def test_a_stream_of_another_type_is_not_supported() -> None:
    t, _ = transport(lambda _r: httpx.Response(200, json={}))

    async def first() -> Any:
        async for event in t.events():
            return event
        return None

    with pytest.raises(EventsNotSupported):
        run(first())


# -- TLS ------------------------------------------------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_contexts(tmp_path: Path) -> None:
    insecure = ssl_context(False)
    assert insecure.verify_mode is ssl.CERT_NONE
    assert not insecure.check_hostname
    cert, key = _self_signed(tmp_path)
    pinned = ssl_context(str(cert), (str(cert), str(key)))
    assert pinned.verify_mode is ssl.CERT_REQUIRED
    assert any(c.get("subject") for c in pinned.get_ca_certs())
    combined = tmp_path / "both.pem"
    combined.write_bytes(cert.read_bytes() + key.read_bytes())
    ssl_context(True, str(combined))
    with pytest.raises(OSError, match="No such file"):
        ssl_context(str(tmp_path / "missing.pem"))
    t = HttpTransport("https://c", verify=str(cert), client_cert=str(combined))
    assert repr(t) == "<HttpTransport https://c>"
    run(t.aclose())


def test_invalid_retries() -> None:
    with pytest.raises(ValueError, match="retries"):
        HttpTransport("http://c", retries=-1)
