"""Settings: defaults, the shipped configs, environment overrides and every validation rule."""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import textwrap
import tomllib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from xaynet.mask import DEFAULT_MASK_CONFIG, MaskConfig, MaskConfigPair
from xaynet_coordinator.settings import (
    MaskConfigSettings,
    MaskSettings,
    ModelSettings,
    Settings,
    SettingsError,
    load_settings,
    parse_bind_address,
    read_model_file,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No XAYNET__ variable of the surrounding shell may leak into these tests."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("XAYNET__"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), "utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> dict[str, str]:
    """Load a config that must fail; the bad keys and their messages."""
    text = textwrap.dedent(text)
    if "[model]" not in text:
        text = "[model]\nlength = 4\n" + text
    with pytest.raises(SettingsError) as info:
        load_settings(write(tmp_path, text))
    keys = dict(info.value.problems)
    assert keys, info.value.message  # a problem with a key, not a file-level error
    # the message names each key as a dotted path at the start of a line
    for key in keys:
        assert re.search(rf"^  {re.escape(key)}: ", info.value.message, re.MULTILINE)
    return keys


# -- defaults and shipped configs ------------------------------------------------------------------


def test_defaults_mirror_the_original_except_the_nmax_conflict() -> None:
    settings = Settings(model={"length": 4})
    pet = settings.pet
    assert (pet.sum.probability, pet.update.probability) == (0.5, 0.9)
    assert (pet.sum.count.min, pet.sum.count.max) == (1, 100)
    assert (pet.sum.time.min, pet.sum.time.max) == (5, 3600)
    # the original's 10 000 exceeds Nmax = 1000 of the M3 configs
    assert (pet.update.count.min, pet.update.count.max) == (3, 1000)
    assert (pet.update.time.min, pet.update.time.max) == (10, 3600)
    assert (pet.sum2.count.min, pet.sum2.count.max) == (1, 100)
    assert settings.mask.pair() == DEFAULT_MASK_CONFIG
    assert settings.api.bind_address == "127.0.0.1:8081"
    assert (settings.api.host, settings.api.port, settings.api.tls) == ("127.0.0.1", 8081, False)
    assert settings.storage.backend == "memory"
    assert settings.models.backend == "directory"
    assert settings.models.directory == Path("global-models")
    assert settings.api.max_body_bytes == 16 * 1024 * 1024
    assert settings.model.load_initial() is None


def load_shipped(name: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A shipped config; docker-dev.toml's [web] paths exist only inside the image, so its file
    check is left out here (coordinator/tests/test_deploy.py checks them against the Dockerfile)."""
    if name == "docker-dev.toml":
        monkeypatch.setenv("XAYNET__WEB__ENABLED", "false")
    return load_settings(CONFIGS / name)


@pytest.mark.parametrize("name", ["config.toml", "docker-dev.toml", "demo.toml"])
def test_shipped_configs_load(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_shipped(name, monkeypatch)
    assert settings.pet.update.count.max <= settings.mask.pair().max_models


def test_shipped_config_specifics(monkeypatch: pytest.MonkeyPatch) -> None:
    local = load_settings(CONFIGS / "config.toml")
    assert (local.api.bind_address, local.storage.backend, local.model.length) == (
        "127.0.0.1:8081",
        "memory",
        4,
    )
    docker = load_shipped("docker-dev.toml", monkeypatch)
    assert docker.api.bind_address == "0.0.0.0:8081"
    assert (docker.storage.backend, docker.storage.url) == ("redis", "redis://redis:6379/0")
    assert (docker.models.backend, docker.models.s3.endpoint_url) == ("s3", "http://minio:9000")
    # the demo page and the compose test-drive devices (the digits model)
    assert docker.model.length == 64 * 10 + 10
    assert tomllib.loads((CONFIGS / "docker-dev.toml").read_text("utf-8"))["web"]["enabled"]
    assert (docker.web.root, docker.web.node_modules, docker.web.wheels) == (
        Path("/app/web_participant"),
        Path("/app/node_modules"),
        Path("/app/wheels"),
    )
    demo = load_settings(CONFIGS / "demo.toml")
    assert demo.model.length == 64 * 10 + 10
    assert demo.storage.backend == "memory"
    for phase in (demo.pet.sum, demo.pet.update, demo.pet.sum2):
        assert 1 <= phase.time.min <= 2
        assert phase.time.max <= 30


@pytest.mark.parametrize("name", ["config.toml", "docker-dev.toml", "demo.toml"])
def test_every_key_of_a_shipped_config_is_commented(name: str) -> None:
    lines = (CONFIGS / name).read_text("utf-8").splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^[a-z_0-9]+ = ", line):
            assert lines[number - 1].startswith("#"), f"{name}:{number + 1}: {line}"


def test_every_key_is_documented_in_operations() -> None:
    text = (ROOT / "docs" / "OPERATIONS.md").read_text("utf-8")
    for key, _ in Settings(model={"length": 4}).describe():
        assert f"`{key}`" in text, key


def test_describe_hides_secrets() -> None:
    settings = Settings(
        model={"length": 4},
        models={"s3": {"access_key": "AKIA-visible", "secret_key": "very-secret"}},
    )
    described = dict(settings.describe())
    assert described["models.s3.secret_key"] == "********"
    redis = Settings(model={"length": 4}, storage={"url": "redis://admin:pw0rd@cache:6379/1"})
    assert dict(redis.describe())["storage.url"] == "redis://admin:********@cache:6379/1"
    no_user = Settings(model={"length": 4}, storage={"url": "rediss://:pw0rd@cache"})
    assert dict(no_user.describe())["storage.url"] == "rediss://:********@cache"
    assert "very-secret" not in repr(settings.describe())
    assert described["pet.sum.probability"] == "0.5"


def test_settings_are_frozen() -> None:
    settings = Settings(model={"length": 4})
    with pytest.raises(ValidationError):
        settings.pet.sum.count.max = 5  # type: ignore[misc]


# -- environment -----------------------------------------------------------------------------------


def test_environment_wins_over_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XAYNET__PET__SUM__PROBABILITY", "0.1")
    monkeypatch.setenv("XAYNET__STORAGE__URL", "redis://cache.internal:6380/3")
    monkeypatch.setenv("xaynet__log__level", "DEBUG")
    settings = load_settings(CONFIGS / "config.toml")
    assert settings.pet.sum.probability == 0.1
    # the rest of the section still comes from the file
    assert settings.pet.sum.count.max == 100
    assert settings.storage.url == "redis://cache.internal:6380/3"
    assert settings.log.level == "debug"


def test_environment_alone_with_partial_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XAYNET__MODEL__LENGTH", "10")
    monkeypatch.setenv("XAYNET__PET__UPDATE__COUNT__MIN", "5")
    monkeypatch.setenv("XAYNET__MASK__VECT__BOUND_TYPE", "b6")
    monkeypatch.setenv("XAYNET__API__CORS_ORIGINS", '["http://localhost:3000"]')
    settings = load_settings(None)
    assert settings.model.length == 10
    assert (settings.pet.update.count.min, settings.pet.update.count.max) == (5, 1000)
    assert settings.mask.vect.bound_type == "B6"
    assert settings.mask.vect.group_type == DEFAULT_MASK_CONFIG.vect.names()["group_type"]
    assert settings.api.cors_origins == ["http://localhost:3000"]


def test_bad_environment_value_names_key_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XAYNET__PET__SUM__PROBABILITY", "1.5")
    with pytest.raises(SettingsError) as info:
        load_settings(CONFIGS / "config.toml")
    assert [key for key, _ in info.value.problems] == ["pet.sum.probability"]
    assert "XAYNET__PET__SUM__PROBABILITY" in info.value.message


def test_unknown_variable_inside_a_section_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XAYNET__PET__SUM__PROB", "0.1")
    with pytest.raises(SettingsError, match=r"pet\.sum\.prob: unknown key"):
        load_settings(CONFIGS / "config.toml")


# -- file-level errors -----------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found") as info:
        load_settings(tmp_path / "nope.toml")
    assert "nope.toml" in info.value.message


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[model]\nlength = 4\n[pet.sum]\nprobability = = 0.5\n")
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    assert str(path) in info.value.message
    assert "line 4" in info.value.message


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b"[model]\nlength = 4 # \xff\n")
    with pytest.raises(SettingsError, match="UTF-8"):
        load_settings(path)


def test_missing_model_section(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(write(tmp_path, "[log]\nlevel = 'info'\n"))
    assert info.value.problems == (("model.length", "required key is missing"),)


def test_underscore_section_is_not_a_keyword_argument(tmp_path: Path) -> None:
    path = write(tmp_path, "_env_prefix = 'X'\n[model]\nlength = 4\n")
    with pytest.raises(SettingsError, match="_env_prefix: unknown key"):
        load_settings(path)


# -- validation, each naming its key ---------------------------------------------------------------

BAD = [
    ("[pet.update]\ncount = { min = 3, max = 5000 }", "pet.update.count.max", "1000"),
    ("[pet.sum]\ncount = { min = 1, max = 5 }\n[pet.sum2]\ncount = { min = 1, max = 6 }",
     "pet.sum2.count.max", "sum.count.max"),
    ("[pet.sum2]\ncount = { min = 0, max = 6 }", "pet.sum2.count.min", "at least 1"),
    ("[pet.update]\ncount = { min = 2, max = 50 }", "pet.update.count.min", "at least 3"),
    ("[pet.sum]\ncount = { min = 0, max = 50 }", "pet.sum.count.min", "at least 1"),
    ("[pet.sum]\ncount = { min = 5, max = 4 }", "pet.sum.count.max", "at least min"),
    ("[pet.sum]\ncount = { min = -1, max = 4 }", "pet.sum.count.min", "greater than or equal"),
    ("[pet.update]\ntime = { min = 30, max = 20 }", "pet.update.time.max", "at least min"),
    ("[pet.sum2]\ntime = { min = 1, max = inf }", "pet.sum2.time.max", "finite"),
    ("[pet.sum]\nprobability = 1.0", "pet.sum.probability", "less than 1"),
    ("[pet.sum]\nprobability = 0", "pet.sum.probability", "greater than 0"),
    ("[pet.update]\nprobability = 1.01", "pet.update.probability", "less than or equal"),
    ("[pet.sum]\nprob = 0.1", "pet.sum.prob", "did you mean 'probability'"),
    ("[pet.sum.count]\nminimum = 1", "pet.sum.count.minimum", "unknown key"),
    ("[strorage]\nbackend = 'redis'", "strorage", "did you mean 'storage'"),
    ("[mask.vect]\ngroup_type = 'Prim'", "mask.vect.group_type", "Power2"),
    ("[mask.unit]\nmodel_type = 'M4'", "mask.unit.model_type", "M3"),
    ("[mask.unit]\nbound_type = 2", "mask.unit.bound_type", "expected a name"),
    ("[model]\nlength = 0", "model.length", "greater than 0"),
    ("[api]\nbind_address = '8081'", "api.bind_address", "host:port"),
    ("[api]\nbind_address = '::1:8081'", "api.bind_address", "brackets"),
    ("[api]\nbind_address = '[::g]:8081'", "api.bind_address", "IPv6"),
    ("[api]\nbind_address = '127.0.0.1:65536'", "api.bind_address", "port"),
    ("[api]\nbind_address = 'bad_host!:80'", "api.bind_address", "host name"),
    ("[api]\nmax_body_bytes = 0", "api.max_body_bytes", "greater than 0"),
    ("[api]\ncors_origins = ['http://x.org/path']", "api.cors_origins", "origin"),
    ("[storage]\nbackend = 'postgres'", "storage.backend", "'memory' or 'redis'"),
    ("[storage]\nurl = 'http://redis:6379'", "storage.url", "redis://"),
    ("[storage]\ncheckpoint_every = 0", "storage.checkpoint_every", "greater than or equal"),
    ("[storage]\nkey_prefix = ''", "storage.key_prefix", "at least 1"),
    ("[models]\nbackend = 'ftp'", "models.backend", "'directory' or 's3'"),
    ("[models.s3]\nbucket = 'Global_Models'", "models.s3.bucket", "bucket name"),
    ("[models.s3]\nendpoint_url = 'minio:9000'", "models.s3.endpoint_url", "http://"),
    ("[models.s3]\naccess_key = 'minio'", "models.s3.secret_key", "go together"),
    ("[multipart]\nmax_total_bytes = 1000", "multipart.max_bytes_per_participant",
     "max_total_bytes"),
    ("[multipart]\nmax_chunks_per_message = 0", "multipart.max_chunks_per_message",
     "greater than 0"),
    ("[log]\nlevel = 'verbose'", "log.level", "'debug'"),
    ("[log]\nformat = 'xml'", "log.format", "'json'"),
    ("[metrics]\nenabled = 'perhaps'", "metrics.enabled", "boolean"),
]  # fmt: skip


@pytest.mark.parametrize(("toml", "key", "fragment"), BAD)
def test_bad_value_names_its_key(tmp_path: Path, toml: str, key: str, fragment: str) -> None:
    problems = problems_of(tmp_path, toml)
    assert list(problems) == [key]
    assert fragment in problems[key]


def test_every_bad_key_is_reported_at_once(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        """
        [pet.sum]
        probability = 2
        typo = 1
        [storage]
        backend = "sqlite"
        [log]
        level = "loud"
        """,
    )
    assert set(problems) == {"pet.sum.probability", "pet.sum.typo", "storage.backend", "log.level"}


def test_sum2_counts_beyond_the_summers(tmp_path: Path) -> None:
    toml = "[pet.sum]\ncount = { min = 1, max = 5 }\n[pet.sum2]\ncount = { min = 6, max = 7 }"
    problems = problems_of(tmp_path, toml)
    assert set(problems) == {"pet.sum2.count.min", "pet.sum2.count.max"}
    assert all("sum.count.max (5)" in message for message in problems.values())


def test_nmax_of_the_unit_config_counts_too(tmp_path: Path) -> None:
    vect_only = """
        [pet.update]
        count = { min = 3, max = 5000 }
        [mask.vect]
        model_type = "M6"
        """
    problems = problems_of(tmp_path, vect_only)
    assert "mask.unit" in problems["pet.update.count.max"]
    both = vect_only + '[mask.unit]\nmodel_type = "M6"\n'
    settings = load_settings(write(tmp_path, "[model]\nlength = 4\n" + textwrap.dedent(both)))
    assert settings.pet.update.count.max == 5000
    assert settings.mask.pair().max_models == 10**6


def test_valid_edge_values(tmp_path: Path) -> None:
    settings = load_settings(
        write(
            tmp_path,
            """
            [api]
            bind_address = "[::1]:0"
            cors_origins = ["*", "https://demo.example.org:8443"]
            [pet.sum]
            probability = 0.999
            count = { min = 3, max = 3 }
            time = { min = 0, max = 0 }
            [pet.update]
            probability = 1
            count = { min = 3, max = 1000 }
            time = { min = 0.5, max = 0.5 }
            [pet.sum2]
            count = { min = 3, max = 3 }
            [log]
            level = "WARNING"
            [model]
            length = 1
            """,
        )
    )
    assert (settings.api.host, settings.api.port) == ("::1", 0)
    assert settings.pet.update.probability == 1.0
    assert settings.pet.update.time.min == 0.5
    assert settings.log.level == "warning"


# -- mask names ------------------------------------------------------------------------------------


def test_mask_names_are_canonicalised_and_converted() -> None:
    names = MaskConfigSettings(
        group_type="prime", data_type="f64", bound_type="bmax", model_type="m6"
    )
    assert names.model_dump() == {
        "group_type": "Prime",
        "data_type": "F64",
        "bound_type": "Bmax",
        "model_type": "M6",
    }
    assert names.to_config() == MaskConfig.from_names("Prime", "F64", "Bmax", "M6")
    pair = MaskSettings(vect=names, unit=names).pair()
    assert pair == MaskConfigPair.uniform(names.to_config())


# -- bind addresses --------------------------------------------------------------------------------


@given(st.ip_addresses(), st.integers(0, 65535))
def test_bind_address_round_trip(address: ipaddress.IPv4Address | ipaddress.IPv6Address,
                                 port: int) -> None:  # fmt: skip
    text = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
    assert parse_bind_address(text) == (str(address), port)


@given(st.text(max_size=30))
def test_bind_address_parser_only_raises_value_error(text: str) -> None:
    try:
        host, port = parse_bind_address(text)
    except ValueError:
        return
    assert 0 <= port <= 65535
    assert host


@pytest.mark.parametrize("text", ["localhost:80", "coordinator.internal:8081", "0.0.0.0:8081"])
def test_host_names_are_accepted(text: str) -> None:
    assert parse_bind_address(text)[1] == int(text.rsplit(":", 1)[1])


# -- initial model ---------------------------------------------------------------------------------


def test_initial_model_json_and_npy(tmp_path: Path) -> None:
    values = [0.5, -1, 2.25, 0]
    json_file = tmp_path / "m.json"
    json_file.write_text(json.dumps(values))
    npy_file = tmp_path / "m.npy"
    np.save(npy_file, np.asarray(values, dtype=np.float32))
    for path in (json_file, npy_file):
        model = ModelSettings(length=4, initial=path).load_initial()
        assert model is not None
        assert model.dtype == np.float64
        assert model.tolist() == values


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("m.json", "[1, 2, 3]", "holds 3 values, but model.length is 4"),
        ("m.json", "[1, 2, 3, NaN]", "finite"),
        ("m.json", "[1, 2, 3, true]", "list of numbers"),
        ("m.json", '{"w": [1, 2, 3, 4]}', "list of numbers"),
        ("m.json", "[1, 2, 3, 4", "not valid JSON"),
        ("m.txt", "1 2 3 4", ".json or .npy"),
        ("absent.json", None, "cannot read"),
    ],
)
def test_initial_model_errors(tmp_path: Path, name: str, content: str | None,
                              fragment: str) -> None:  # fmt: skip
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    problems = problems_of(tmp_path, f"initial = '{path}'\n")
    assert list(problems) == ["model.initial"]
    assert fragment in problems["model.initial"]


@pytest.mark.parametrize(
    "array",
    [np.zeros((2, 2)), np.array(["a", "b", "c", "d"]), np.array([1.0, np.inf, 0.0, 0.0])],
)
def test_initial_model_npy_errors(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "m.npy"
    np.save(path, array)
    with pytest.raises(ValueError, match=r"1-D numeric|finite"):
        read_model_file(path, 4)


# -- TLS -------------------------------------------------------------------------------------------


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A throw-away certificate and key (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp_path / f"{name}.pem"
    key_path = tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_valid_combinations(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path, "server")
    ca, _ = _self_signed(tmp_path, "clients")
    https = Settings(model={"length": 4}, api={"tls_certificate": cert, "tls_key": key})
    assert https.api.tls
    mutual = Settings(
        model={"length": 4},
        api={"tls_certificate": cert, "tls_key": key, "tls_client_auth": ca},
    )
    assert mutual.api.tls_client_auth == ca


def test_tls_invalid_combinations(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path, "server")
    other_cert, other_key = _self_signed(tmp_path, "other")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    cases = [
        (f"tls_certificate = '{cert}'", {"api.tls_key": "go together"}),
        (f"tls_key = '{key}'", {"api.tls_certificate": "go together"}),
        (f"tls_client_auth = '{cert}'", {"api.tls_client_auth": "need HTTPS"}),
        (
            f"tls_certificate = '{tmp_path / 'absent.pem'}'\ntls_key = '{key}'",
            {"api.tls_certificate": "no such file"},
        ),
        (
            f"tls_certificate = '{cert}'\ntls_key = '{other_key}'",
            {"api.tls_certificate": "cannot load certificate and key"},
        ),
        (
            f"tls_certificate = '{cert}'\ntls_key = '{key}'\ntls_client_auth = '{garbage}'",
            {"api.tls_client_auth": "cannot load CA certificates"},
        ),
    ]
    assert other_cert.exists()
    for toml, expected in cases:
        problems = problems_of(tmp_path, "[api]\n" + toml + "\n")
        assert set(problems) == set(expected), toml
        for key_name, fragment in expected.items():
            assert fragment in problems[key_name]


def test_model_directory_must_not_be_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    problems = problems_of(tmp_path, f"[models]\ndirectory = '{target}'\n")
    assert list(problems) == ["models.directory"]
