"""The coordinator's settings: a TOML file, overridden by ``XAYNET__SECTION__KEY`` variables.

Every section is a frozen pydantic model that rejects unknown keys, so a typo fails at start
instead of being silently ignored. Checks that span several keys (the ones the original Xaynet
lacked: ``pet.update.count.max`` against the mask configs' Nmax, Sum2 counts within Sum counts,
the initial model's length, TLS files) raise one error per offending key, and
:func:`load_settings` turns every problem into a line ``dotted.key: what is wrong``.

Relative paths (``model.initial``, ``models.directory``, the TLS files) are resolved against the
working directory of the process, as the original did.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import re
import ssl
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from xaynet.errors import ConfigError
from xaynet.mask import DEFAULT_MASK_CONFIG, MaskConfig, MaskConfigPair

__all__ = [
    "ENV_PREFIX",
    "SettingsError",
    "CountRange",
    "TimeRange",
    "PhaseSettings",
    "SumSettings",
    "UpdateSettings",
    "PetSettings",
    "MaskConfigSettings",
    "MaskSettings",
    "ModelSettings",
    "StorageSettings",
    "S3Settings",
    "ModelStoreSettings",
    "ApiSettings",
    "WebSettings",
    "WEB_VENDOR_FILES",
    "MultipartSettings",
    "LogSettings",
    "MetricsSettings",
    "Settings",
    "load_settings",
    "parse_bind_address",
    "read_model_file",
]

#: Environment variables with this prefix override the file; ``__`` separates the levels.
ENV_PREFIX = "XAYNET__"
_ENV_DELIMITER = "__"

#: The fewest updates a round may aggregate: the global model of one or two updates reveals
#: too much about each of them (the original's floor, kept on purpose).
MIN_UPDATES = 3

MiB = 1024 * 1024


class SettingsError(Exception):
    """Invalid settings. ``message`` names every bad key as a dotted path, one per line."""

    def __init__(self, message: str, problems: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.message = message
        #: (dotted key, what is wrong) pairs; empty for file-level errors (missing file, syntax)
        self.problems = tuple(problems)


# -- helpers for errors that name a key -----------------------------------------------------------


def _fail(problems: Sequence[tuple[str, str]]) -> PydanticCustomError:
    """An error naming keys relative to the model that raises it.

    Pydantic places a model validator's error at the model itself; the ``problems`` context
    carries the sub-keys so that :func:`load_settings` can name each offending key exactly.
    """
    summary = "; ".join(f"{key}: {message}" for key, message in problems)
    return PydanticCustomError(
        "cross_field", "{summary}", {"summary": summary, "problems": tuple(problems)}
    )


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _merge_defaults(defaults: Mapping[str, Any], given: Any) -> Any:
    """Deep-merge a partial section into its defaults (given values win).

    This lets a file or a single environment variable change one key of a section whose keys
    have no defaults of their own (``XAYNET__PET__SUM__PROBABILITY=0.1`` keeps the counts).
    Only plain mappings are merged; a model instance is taken as it is.
    """
    if not isinstance(given, Mapping):
        return given
    merged: dict[str, Any] = dict(defaults)
    for key, value in given.items():
        default = defaults.get(key)
        merged[key] = _merge_defaults(default, value) if isinstance(default, Mapping) else value
    return merged


# -- [pet] ----------------------------------------------------------------------------------------


class CountRange(_Section):
    """How many messages a phase accepts: at least ``min``, at most ``max``."""

    min: Annotated[int, Field(ge=0)]
    max: Annotated[int, Field(ge=0)]

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min > self.max:
            raise _fail([("max", f"must be at least min ({self.min}), got {self.max}")])
        return self


class TimeRange(_Section):
    """How long a phase lasts, in seconds: at least ``min``, at most ``max``."""

    min: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    max: Annotated[float, Field(ge=0, allow_inf_nan=False)]

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min > self.max:
            raise _fail([("max", f"must be at least min ({self.min}), got {self.max}")])
        return self


class PhaseSettings(_Section):
    """The counting window of one phase (Sum2 has no probability)."""

    count: CountRange
    time: TimeRange


class SumSettings(PhaseSettings):
    """The Sum phase: ``probability`` is p_sum, the chance of a participant to be a summer."""

    probability: Annotated[float, Field(gt=0, lt=1)]

    @model_validator(mode="after")
    def _floor(self) -> Self:
        if self.count.min < 1:
            raise _fail([("count.min", "a round needs at least 1 summer")])
        return self


class UpdateSettings(PhaseSettings):
    """The Update phase: ``probability`` is p_update for a participant that is no summer."""

    probability: Annotated[float, Field(gt=0, le=1)]

    @model_validator(mode="after")
    def _floor(self) -> Self:
        if self.count.min < MIN_UPDATES:
            raise _fail(
                [
                    (
                        "count.min",
                        f"must be at least {MIN_UPDATES}: the mean of fewer updates reveals "
                        f"too much about each of them, got {self.count.min}",
                    )
                ]
            )
        return self


# The original's defaults (spec 1.5), except update.count.max: its 10 000 exceeds the 1 000
# models that the M3 mask configs can aggregate, which the original did not check.
_PET_DEFAULTS: dict[str, Any] = {
    "sum": {"probability": 0.5, "count": {"min": 1, "max": 100}, "time": {"min": 5, "max": 3600}},
    "update": {
        "probability": 0.9,
        "count": {"min": MIN_UPDATES, "max": 1000},
        "time": {"min": 10, "max": 3600},
    },
    "sum2": {"count": {"min": 1, "max": 100}, "time": {"min": 5, "max": 3600}},
}


class PetSettings(_Section):
    """The PET round: task probabilities and the counting windows of Sum, Update and Sum2."""

    sum: SumSettings = Field(default_factory=lambda: SumSettings(**_PET_DEFAULTS["sum"]))
    update: UpdateSettings = Field(
        default_factory=lambda: UpdateSettings(**_PET_DEFAULTS["update"])
    )
    sum2: PhaseSettings = Field(default_factory=lambda: PhaseSettings(**_PET_DEFAULTS["sum2"]))

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        return _merge_defaults(_PET_DEFAULTS, data)

    @model_validator(mode="after")
    def _sum2_within_sum(self) -> Self:
        problems: list[tuple[str, str]] = []
        sum_max = self.sum.count.max
        if self.sum2.count.min < 1:
            problems.append(("sum2.count.min", "a round needs at least 1 mask from a summer"))
        if self.sum2.count.min > sum_max:
            problems.append(
                (
                    "sum2.count.min",
                    f"must not exceed sum.count.max ({sum_max}): only summers send Sum2 "
                    f"messages, got {self.sum2.count.min}",
                )
            )
        if self.sum2.count.max > sum_max:
            problems.append(
                (
                    "sum2.count.max",
                    f"must not exceed sum.count.max ({sum_max}), got {self.sum2.count.max}",
                )
            )
        if problems:
            raise _fail(problems)
        return self


# -- [mask] ---------------------------------------------------------------------------------------

_PLACEHOLDER = {"group_type": "Power2", "data_type": "F32", "bound_type": "B0", "model_type": "M3"}


def _check_mask_name(field: str, value: Any) -> str:
    """Validate one name on its own (the other three fixed to a valid placeholder).

    Returns the canonical spelling, so ``"prime"`` becomes ``"Prime"``.
    """
    names = {**_PLACEHOLDER, field: value}
    try:
        config = MaskConfig.from_names(
            names["group_type"], names["data_type"], names["bound_type"], names["model_type"]
        )
    except ConfigError as exc:
        # the xaynet message starts with the field name, which the error location already has
        message = str(exc).removeprefix(f"{field}: ")
        raise PydanticCustomError("mask_name", "{message}", {"message": message}) from None
    return config.names()[field]


class MaskConfigSettings(_Section):
    """One masking configuration by names, as ``xaynet.mask.MaskConfig.from_names`` takes them."""

    group_type: str
    data_type: str
    bound_type: str
    model_type: str

    @field_validator("group_type", "data_type", "bound_type", "model_type", mode="before")
    @classmethod
    def _known_name(cls, value: Any, info: ValidationInfo) -> str:
        return _check_mask_name(str(info.field_name), value)

    def to_config(self) -> MaskConfig:
        """The :class:`xaynet.mask.MaskConfig` these names describe."""
        return MaskConfig.from_names(
            self.group_type, self.data_type, self.bound_type, self.model_type
        )


_MASK_DEFAULTS: dict[str, Any] = {
    "vect": DEFAULT_MASK_CONFIG.vect.names(),
    "unit": DEFAULT_MASK_CONFIG.unit.names(),
}


class MaskSettings(_Section):
    """The mask configs of the model vector and of the scalar (unit) element."""

    vect: MaskConfigSettings = Field(
        default_factory=lambda: MaskConfigSettings(**_MASK_DEFAULTS["vect"])
    )
    unit: MaskConfigSettings = Field(
        default_factory=lambda: MaskConfigSettings(**_MASK_DEFAULTS["unit"])
    )

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        return _merge_defaults(_MASK_DEFAULTS, data)

    def pair(self) -> MaskConfigPair:
        """The :class:`xaynet.mask.MaskConfigPair` the round parameters announce."""
        return MaskConfigPair(self.vect.to_config(), self.unit.to_config())


# -- [model] --------------------------------------------------------------------------------------


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a finite number")


def read_model_file(path: Path, length: int) -> npt.NDArray[np.float64]:
    """Read a model file: a JSON list of numbers (``.json``) or a 1-D numeric array (``.npy``).

    Raises :class:`ValueError` with a one-line reason when the file cannot be read, is not a
    flat list of finite numbers, or does not hold exactly ``length`` values.
    """
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            values = json.loads(path.read_text("utf-8"), parse_constant=_reject_constant)
            if not isinstance(values, list) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in values
            ):
                raise ValueError("expected a JSON list of numbers")
            array = np.asarray(values, dtype=np.float64)
        elif suffix == ".npy":
            loaded = np.load(path, allow_pickle=False)
            if loaded.ndim != 1 or loaded.dtype.kind not in "fiu":
                raise ValueError(
                    f"expected a 1-D numeric array, got shape {loaded.shape} of {loaded.dtype}"
                )
            array = loaded.astype(np.float64)
        else:
            raise ValueError(f"expected a .json or .npy file, got {path.name!r}")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    if not np.all(np.isfinite(array)):
        raise ValueError("the model holds a value that is not a finite number")
    if array.shape[0] != length:
        raise ValueError(f"holds {array.shape[0]} values, but model.length is {length}")
    return array


class ModelSettings(_Section):
    """The model: its length and, optionally, the global model to publish before round 1."""

    length: Annotated[int, Field(gt=0)]
    initial: Path | None = None

    @model_validator(mode="after")
    def _initial_readable(self) -> Self:
        if self.initial is not None:
            try:
                read_model_file(self.initial, self.length)
            except ValueError as exc:
                raise _fail([("initial", str(exc))]) from None
        return self

    def load_initial(self) -> npt.NDArray[np.float64] | None:
        """The initial global model (read from disk on every call), or None."""
        if self.initial is None:
            return None
        return read_model_file(self.initial, self.length)


# -- [storage] and [models] -----------------------------------------------------------------------


class StorageSettings(_Section):
    """Where the round state lives: in the process (``memory``) or in Redis."""

    backend: Literal["memory", "redis"] = "memory"
    url: str = "redis://127.0.0.1:6379/0"
    key_prefix: Annotated[str, Field(min_length=1)] = "xaynet:"
    checkpoint_every: Annotated[int, Field(ge=1)] = 25

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme not in ("redis", "rediss", "unix"):
            raise PydanticCustomError(
                "redis_url",
                "expected a redis://, rediss:// or unix:// URL, got {value!r}",
                {"value": value},
            )
        return value


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PydanticCustomError(
            "http_url", "expected an http:// or https:// URL, got {value!r}", {"value": value}
        )
    return value


class S3Settings(_Section):
    """An S3-compatible object store (AWS S3, MinIO) for the global models."""

    bucket: str = "global-models"
    endpoint_url: str | None = None
    region: Annotated[str, Field(min_length=1)] = "us-east-1"
    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        if not _BUCKET.fullmatch(value) or ".." in value:
            raise PydanticCustomError(
                "bucket_name",
                "not a valid S3 bucket name (3-63 characters: lower-case letters, digits, "
                "dots and hyphens, starting and ending with a letter or digit), got {value!r}",
                {"value": value},
            )
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else _check_http_url(value)

    @model_validator(mode="after")
    def _credentials_pair(self) -> Self:
        if (self.access_key is None) != (self.secret_key is None):
            missing = "secret_key" if self.secret_key is None else "access_key"
            raise _fail(
                [
                    (
                        missing,
                        "access_key and secret_key go together (leave both unset to use the "
                        "default AWS credential chain)",
                    )
                ]
            )
        return self


class ModelStoreSettings(_Section):
    """Where global models are written: a local directory or an S3 bucket."""

    backend: Literal["directory", "s3"] = "directory"
    directory: Path = Path("global-models")
    s3: S3Settings = Field(default_factory=S3Settings)

    @model_validator(mode="after")
    def _directory_usable(self) -> Self:
        if self.backend == "directory" and self.directory.exists() and not self.directory.is_dir():
            raise _fail([("directory", f"{self.directory} exists and is not a directory")])
        return self


# -- [api] ----------------------------------------------------------------------------------------

_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")


def parse_bind_address(value: str) -> tuple[str, int]:
    """Split ``host:port`` (IPv6 as ``[::1]:8081``) into host and port; ValueError if invalid."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if not rest.startswith(":"):
            raise ValueError("expected [ipv6-address]:port")
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or not host:
            raise ValueError("expected host:port, e.g. 127.0.0.1:8081")
        if ":" in host:
            raise ValueError("an IPv6 address needs brackets, e.g. [::1]:8081")
        if not _HOSTNAME.fullmatch(host):
            raise ValueError(f"{host!r} is neither an IP address nor a host name")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"the port must be a number from 0 to 65535, got {port_text!r}")
    return host, int(port_text)


_ORIGIN = re.compile(r"https?://[^/\s]+")


class ApiSettings(_Section):
    """The HTTP(S) listener."""

    bind_address: str = "127.0.0.1:8081"
    tls_certificate: Path | None = None
    tls_key: Path | None = None
    tls_client_auth: Path | None = None
    max_body_bytes: Annotated[int, Field(gt=0)] = 16 * MiB
    cors_origins: list[str] = Field(default_factory=list)

    @field_validator("bind_address")
    @classmethod
    def _bind_address(cls, value: str) -> str:
        try:
            parse_bind_address(value)
        except ValueError as exc:
            raise PydanticCustomError("bind_address", "{reason}", {"reason": str(exc)}) from None
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not _ORIGIN.fullmatch(origin):
                raise PydanticCustomError(
                    "cors_origin",
                    "expected '*' or an origin like https://example.org (scheme, host, "
                    "optional port, no path), got {origin!r}",
                    {"origin": origin},
                )
        return value

    @model_validator(mode="after")
    def _tls(self) -> Self:
        problems: list[tuple[str, str]] = []
        files = {
            "tls_certificate": self.tls_certificate,
            "tls_key": self.tls_key,
            "tls_client_auth": self.tls_client_auth,
        }
        for key, path in files.items():
            if path is not None and not path.is_file():
                problems.append((key, f"no such file: {path}"))
        if (self.tls_certificate is None) != (self.tls_key is None):
            missing = "tls_key" if self.tls_key is None else "tls_certificate"
            problems.append((missing, "tls_certificate and tls_key go together"))
        if self.tls_client_auth is not None and self.tls_certificate is None:
            problems.append(
                (
                    "tls_client_auth",
                    "client certificates need HTTPS: set tls_certificate and tls_key too",
                )
            )
        if not problems and self.tls_certificate is not None and self.tls_key is not None:
            # Load them now so that a wrong or mismatched file fails at start, naming the key.
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            try:
                context.load_cert_chain(self.tls_certificate, self.tls_key)
            except (ssl.SSLError, OSError) as exc:
                problems.append(("tls_certificate", f"cannot load certificate and key: {exc}"))
            if self.tls_client_auth is not None:
                try:
                    context.load_verify_locations(cafile=self.tls_client_auth)
                except (ssl.SSLError, OSError) as exc:
                    problems.append(("tls_client_auth", f"cannot load CA certificates: {exc}"))
        if problems:
            raise _fail(problems)
        return self

    @property
    def host(self) -> str:
        """The host part of ``bind_address`` (without IPv6 brackets)."""
        return parse_bind_address(self.bind_address)[0]

    @property
    def port(self) -> int:
        """The port part of ``bind_address``."""
        return parse_bind_address(self.bind_address)[1]

    @property
    def tls(self) -> bool:
        """Whether the API serves HTTPS."""
        return self.tls_certificate is not None


# -- [multipart], [log], [metrics] ----------------------------------------------------------------


class MultipartSettings(_Section):
    """Bounds on the chunk buffers of multipart messages (dropped at the end of each phase)."""

    max_bytes_per_participant: Annotated[int, Field(gt=0)] = 64 * MiB
    max_messages_per_participant: Annotated[int, Field(gt=0)] = 2
    max_chunks_per_message: Annotated[int, Field(gt=0)] = 65536
    max_total_bytes: Annotated[int, Field(gt=0)] = 512 * MiB

    @model_validator(mode="after")
    def _per_participant_within_total(self) -> Self:
        if self.max_bytes_per_participant > self.max_total_bytes:
            raise _fail(
                [
                    (
                        "max_bytes_per_participant",
                        f"must not exceed max_total_bytes ({self.max_total_bytes})",
                    )
                ]
            )
        return self


class LogSettings(_Section):
    """Logging of the coordinator and of uvicorn (access log included)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"

    @field_validator("level", "format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class MetricsSettings(_Section):
    """The Prometheus endpoint ``GET /metrics``."""

    enabled: bool = True


# -- [web] ----------------------------------------------------------------------------------------

#: What the browser participant needs, relative to ``web.node_modules`` (the committed lock).
WEB_VENDOR_FILES = (
    "pyodide/pyodide.mjs",
    "pyodide/pyodide.asm.wasm",
    "libsodium-wrappers/dist/modules-esm/libsodium-wrappers.mjs",
    "libsodium/dist/modules-esm/libsodium.mjs",
)


class WebSettings(_Section):
    """The browser participant and demo page, served at ``/`` (off unless enabled)."""

    enabled: bool = False
    root: Path = Path("web_participant")
    node_modules: Path = Path("node_modules")
    wheels: Path = Path(".cache/web")

    @model_validator(mode="after")
    def _files_present(self) -> Self:
        if not self.enabled:
            return self
        problems = []
        if not (self.root / "index.html").is_file():
            problems.append(
                ("root", f"{self.root} holds no index.html (the web_participant folder)")
            )
        missing = [name for name in WEB_VENDOR_FILES if not (self.node_modules / name).is_file()]
        if missing:
            problems.append(
                ("node_modules", f"{self.node_modules} lacks {', '.join(missing)}: run `npm ci`")
            )
        if not (self.wheels.is_dir() and any(self.wheels.glob("xaynet-*.whl"))):
            problems.append(
                ("wheels", f"no xaynet-*.whl in {self.wheels}: run `make web` to build it")
            )
        if problems:
            raise _fail(problems)
        return self


# -- the whole -------------------------------------------------------------------------------------


class Settings(BaseSettings):
    """All settings: build with :func:`load_settings` (or ``Settings(model={"length": 4})``)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=_ENV_DELIMITER,
        case_sensitive=False,
        extra="forbid",
        frozen=True,
    )

    api: ApiSettings = Field(default_factory=ApiSettings)
    pet: PetSettings = Field(default_factory=PetSettings)
    mask: MaskSettings = Field(default_factory=MaskSettings)
    model: ModelSettings
    storage: StorageSettings = Field(default_factory=StorageSettings)
    models: ModelStoreSettings = Field(default_factory=ModelStoreSettings)
    multipart: MultipartSettings = Field(default_factory=MultipartSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    web: WebSettings = Field(default_factory=WebSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file arrives as init arguments; the environment must win over it. No .env files.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _updates_fit_the_group(self) -> Self:
        # The original did not check this: more updates than Nmax wrap the aggregate around q
        # and the round silently produces garbage (or fails at unmasking).
        problems = []
        limit = self.pet.update.count.max
        for half in ("vect", "unit"):
            names: MaskConfigSettings = getattr(self.mask, half)
            nmax = names.to_config().max_models
            if limit > nmax:
                problems.append(
                    (
                        "pet.update.count.max",
                        f"must not exceed {nmax}, the number of models mask.{half} "
                        f"(model_type {names.model_type}) can aggregate; lower it or choose a "
                        f"larger model_type, got {limit}",
                    )
                )
                break
        if problems:
            raise _fail(problems)
        return self

    def describe(self) -> list[tuple[str, str]]:
        """Every key as (dotted key, value), secrets hidden: for ``--check`` and start-up logs."""
        return list(_flatten(self.model_dump(), ""))


def _flatten(value: Any, prefix: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, SecretStr):
        yield prefix, "********"
    elif isinstance(value, list):
        yield prefix, json.dumps([str(v) for v in value])
    elif value is None:
        yield prefix, "(not set)"
    elif prefix.endswith("url"):
        yield prefix, _redact_url(str(value))
    else:
        yield prefix, str(value)


def _redact_url(url: str) -> str:
    """The URL with its password (``redis://:pw@host``) replaced by asterisks."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return parts._replace(netloc=f"{user}:********@{host}").geturl()


# -- loading --------------------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise SettingsError(f"{path}: configuration file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{path}: invalid TOML: the file is not UTF-8") from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the file: {exc.strerror or exc}") from None


def _model_at(location: Sequence[str]) -> type[BaseModel] | None:
    """The settings model at a dotted location, for listing its valid keys."""
    model: type[BaseModel] = Settings
    for part in location:
        field = model.model_fields.get(part)
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _unknown_key_message(location: Sequence[str], key: str) -> str:
    model = _model_at(location)
    if model is None:
        return "unknown key"
    valid = list(model.model_fields)
    message = f"unknown key; valid keys here: {', '.join(valid)}"
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if close:
        message = f"unknown key (did you mean {close[0]!r}?); valid keys here: {', '.join(valid)}"
    return message


def _env_name(location: Sequence[str]) -> str | None:
    """The environment variable that set this key, if one did."""
    wanted = (ENV_PREFIX + _ENV_DELIMITER.join(location)).upper()
    for name in os.environ:
        if name.upper() == wanted:
            return name
    return None


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for error in exc.errors(include_url=False):
        location = [str(part) for part in error["loc"]]
        context = error.get("ctx") or {}
        kind = error["type"]
        if kind == "cross_field":
            for key, message in context["problems"]:
                problems.append((".".join([*location, key]), message))
            continue
        if kind == "missing":
            section = _model_at(location)
            if section is not None:
                # a whole section is missing: name the keys it cannot do without
                problems += [
                    (".".join([*location, name]), "required key is missing")
                    for name, field in section.model_fields.items()
                    if field.is_required()
                ]
                continue
            message = "required key is missing"
        elif kind == "extra_forbidden":
            message = _unknown_key_message(location[:-1], location[-1])
        else:
            message = error["msg"].removeprefix("Value error, ")
            value = error.get("input")
            secret = location[-1] in ("access_key", "secret_key")
            if isinstance(value, str | int | float | bool) and not secret and "got" not in message:
                message = f"{message}, got {value!r}"
        env = _env_name(location)
        if env is not None:
            message = f"{message} (set by the environment variable {env})"
        problems.append((".".join(location), message))
    return problems


def load_settings(path: Path | None = None) -> Settings:
    """Load the TOML file at ``path`` (or nothing), apply ``XAYNET__…`` overrides, validate.

    Raises :class:`SettingsError` whose message names the file and every bad key.
    """
    data = _read_toml(path) if path is not None else {}
    source = str(path) if path is not None else "the environment"
    # Keys with a leading underscore would reach BaseSettings' own keyword arguments.
    hidden = [key for key in data if key.startswith("_")]
    if hidden:
        problems = [(key, _unknown_key_message([], key)) for key in hidden]
        raise SettingsError(_format(source, problems), problems)
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = _problems(exc)
        raise SettingsError(_format(source, problems), problems) from None


def _format(source: str, problems: Sequence[tuple[str, str]]) -> str:
    noun = "setting" if len(problems) == 1 else "settings"
    lines = [f"invalid configuration ({source}): {len(problems)} bad {noun}"]
    lines += [f"  {key}: {message}" for key, message in problems]
    return "\n".join(lines)
