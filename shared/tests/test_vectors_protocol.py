"""Known-answer tests: every vector in vectors/{eligibility,round,mask,messages}.json.

The files pin the protocol byte for byte (docs/PROTOCOL.md section 12). Masks are checked on the
pure path everywhere, and on the numpy path too where numpy is importable and the config allows
it. Only xaynet and the standard library are used, so the suite also runs under Pyodide; the one
exception is regenerating messages.json, whose deterministic sealed boxes need PyNaCl.
"""

from __future__ import annotations

import importlib.util
import json
import struct
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from xaynet import crypto
from xaynet.eligibility import (
    Task,
    is_eligible,
    sum_signature,
    update_signature,
    verify_sum_eligibility,
    verify_task_signature,
    verify_update_eligibility,
)
from xaynet.mask import (
    DEFAULT_MASK_CONFIG,
    Aggregation,
    MaskConfig,
    MaskConfigPair,
    MaskObject,
    derive_mask,
    encoding,
    mask_model,
)
from xaynet.message import (
    Chunk,
    Message,
    Reassembler,
    Sum,
    Sum2,
    Tag,
    Update,
    open_message,
    parse_header,
    split_message,
)
from xaynet.participant import Role, SumTask, UpdateTask, choose_role
from xaynet.round import INITIAL_ROUND_SEED, RoundParameters, next_round_seed, round_seed_verify_key

VECTORS_DIR = Path(__file__).resolve().parent / "vectors"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS_DIR / name).read_text(encoding="utf-8"))
    return data


ELIGIBILITY = _load("eligibility.json")
ROUND = _load("round.json")
MASK = _load("mask.json")
MESSAGES = _load("messages.json")

_FIELDS = ("group_type", "data_type", "bound_type", "model_type")


def _h(text: str) -> bytes:
    return bytes.fromhex(text)


def _config(names: dict[str, str]) -> MaskConfig:
    return MaskConfig.from_names(*(names[field] for field in _FIELDS))


def _pair(names: dict[str, dict[str, str]]) -> MaskConfigPair:
    return MaskConfigPair(_config(names["vect"]), _config(names["unit"]))


def _fraction(text: str) -> Fraction:
    return Fraction(text)


def _model(entry: dict[str, Any]) -> list[float] | list[int]:
    if entry["kind"] == "float":
        return [float.fromhex(v) for v in entry["values"]]
    return [int(v) for v in entry["values"]]


def _floats_hex(values: list[float]) -> list[str]:
    return [v.hex() for v in values]


def _with_paths(cases: list[dict[str, Any]], label: str = "name") -> Iterator[Any]:
    """(case, path) parameters: the pure path, and numpy where the case's config allows it."""
    for case in cases:
        config = _pair(case["config"]) if "config" in case else DEFAULT_MASK_CONFIG
        name = str(case[label])
        yield pytest.param(case, "pure", id=f"{name}-pure")
        if config.vect.numpy_compatible:
            yield pytest.param(case, "numpy", marks=pytest.mark.numpy, id=f"{name}-numpy")


# -- eligibility.json --------------------------------------------------------------------------


def _check_signature_entry(entry: dict[str, Any]) -> None:
    signature = _h(entry["signature"])
    digest = crypto.sha256(signature)
    assert digest == _h(entry["sha256"])
    assert int.from_bytes(digest, "little") == int(entry["hash_int"])
    assert Fraction(int(entry["hash_int"]), 2**256 - 1) == _fraction(entry["ratio"])
    for p, expected in entry["eligible"].items():
        assert is_eligible(signature, float(p)) is expected, p
    assert is_eligible(signature, float.fromhex(entry["lowest_eligible"]["hex"]))
    assert not is_eligible(signature, float.fromhex(entry["highest_ineligible"]["hex"]))


@pytest.mark.parametrize("entry", ELIGIBILITY["original"], ids=lambda e: e["signature"][:8])
def test_original_signatures(entry: dict[str, Any]) -> None:
    _check_signature_entry(entry)


def test_original_signatures_at_one_half() -> None:
    first, second = ELIGIBILITY["original"]
    assert first["signature"].startswith("ac1d55db")
    assert first["eligible"]["0.5"] is True
    assert second["signature"].startswith("7702c5ae")
    assert second["eligible"]["0.5"] is False


@pytest.mark.parametrize(
    "participant", ELIGIBILITY["participants"], ids=lambda p: p["signing_seed"][:4]
)
def test_participant_task_signatures(participant: dict[str, Any]) -> None:
    keys = crypto.SigningKeyPair.from_seed(_h(participant["signing_seed"]))
    assert keys.public == _h(participant["public_key"])
    seed = _h(ELIGIBILITY["round_seed"])
    signatures: dict[Task, bytes] = {
        "sum": sum_signature(keys, seed),
        "update": update_signature(keys, seed),
    }
    for task, signature in signatures.items():
        assert signature == _h(participant[task]["signature"])
        assert verify_task_signature(keys.public, seed, task, signature)
        _check_signature_entry(participant[task])
    probabilities = ELIGIBILITY["role_probabilities"]
    params = RoundParameters(
        round_id=1,
        coordinator_pk=bytes(32),
        sum_probability=probabilities["sum"],
        update_probability=probabilities["update"],
        seed=seed,
        mask_config=DEFAULT_MASK_CONFIG,
        model_length=1,
    )
    assert choose_role(keys, params).role.value == participant["role"]


# -- round.json --------------------------------------------------------------------------------


def test_round_seed_chain() -> None:
    previous = _h(ROUND["initial_seed"])
    assert previous == INITIAL_ROUND_SEED
    for entry in ROUND["rounds"]:
        keys = crypto.EncryptKeyPair.from_seed(_h(entry["box_seed"]))
        assert keys.public == _h(entry["public_key"])
        assert keys.secret == _h(entry["secret_key"])
        assert _h(entry["previous_seed"]) == previous
        p_sum, p_update = entry["sum_probability"], entry["update_probability"]
        message = previous + struct.pack("<dd", p_sum, p_update)
        assert message == _h(entry["signed_message"])
        signer = crypto.SigningKeyPair.from_seed(keys.secret)
        assert signer.public == _h(entry["verify_key"]) == round_seed_verify_key(keys.secret)
        signature = signer.sign(message)
        assert signature == _h(entry["signature"])
        assert crypto.verify(signer.public, message, signature)
        seed = next_round_seed(previous, keys.secret, p_sum, p_update)
        assert seed == crypto.sha256(signature) == _h(entry["seed"])
        previous = seed


@pytest.mark.parametrize("entry", ROUND["rounds"], ids=lambda e: str(e["round_id"]))
def test_round_parameters_json(entry: dict[str, Any]) -> None:
    params = RoundParameters.from_json_dict(entry["params"])
    assert params.to_json_dict() == entry["params"]
    assert json.loads(json.dumps(params.to_json_dict())) == entry["params"]
    assert params.round_id == entry["round_id"]
    assert params.coordinator_pk == _h(entry["public_key"])
    assert params.seed == _h(entry["seed"])
    assert params.sum_probability == entry["sum_probability"]
    assert params.update_probability == entry["update_probability"]


# -- mask.json ---------------------------------------------------------------------------------


def test_default_config() -> None:
    assert _pair(MASK["default"]) == DEFAULT_MASK_CONFIG


@pytest.mark.parametrize("entry", MASK["constants"], ids=lambda e: "/".join(e["config"].values()))
def test_config_constants(entry: dict[str, Any]) -> None:
    config = _config(entry["config"])
    assert config.to_bytes() == _h(entry["bytes"])
    assert MaskConfig.from_bytes(_h(entry["bytes"])) == config
    assert config.add_shift == int(entry["add_shift"])
    assert config.exp_shift == 10 ** entry["exp_shift_exponent"]
    assert config.max_models == int(entry["max_models"])
    assert config.max_models * config.max_element + 1 == int(entry["integer_order"])
    assert config.order == int(entry["order"])
    assert config.bits == entry["bits"] == (config.order - 1).bit_length()
    assert config.bytes_per_element == entry["bytes_per_element"]


@pytest.mark.parametrize(("case", "path"), list(_with_paths(MASK["derive_mask"])))
def test_derive_mask(case: dict[str, Any], path: Any) -> None:
    config, seed = _pair(case["config"]), _h(case["seed"])
    short = derive_mask(seed, config=config, length=case["short"]["length"], path=path)
    assert short.to_bytes() == _h(case["short"]["object"])
    assert short.vect.elements() == [int(v) for v in case["short"]["vect"]]
    assert short.unit.value == int(case["unit"])
    assert MaskObject.from_bytes(_h(case["short"]["object"])) == short

    long = derive_mask(seed, config=config, length=case["long"]["length"], path=path)
    assert crypto.sha256(long.vect.data).hex() == case["long"]["vect_data_sha256"]
    assert crypto.sha256(long.to_bytes()).hex() == case["long"]["object_sha256"]
    assert long.unit.value == int(case["unit"])
    assert long.vect.elements()[-1] == int(case["long"]["last"])


@pytest.mark.parametrize(("case", "path"), list(_with_paths(MASK["mask_model"])))
def test_mask_model(case: dict[str, Any], path: Any) -> None:
    config, seed = _pair(case["config"]), _h(case["seed"])
    model, scalar = _model(case["model"]), _fraction(case["scalar"])
    masked = mask_model(seed, model, config=config, scalar=scalar, path=path)
    assert masked.to_bytes() == _h(case["object"])
    assert MaskObject.from_bytes(_h(case["object"])) == masked


@pytest.mark.parametrize("case", MASK["mask_model"], ids=lambda c: c["name"])
def test_mask_model_intermediates(case: dict[str, Any]) -> None:
    """The fixed-point values before masking, and masking as (y + r) mod q."""
    config, seed = _pair(case["config"]), _h(case["seed"])
    scalar = encoding.clamp_scalar(encoding.to_scalar(_fraction(case["scalar"])), config.unit)
    assert scalar == _fraction(case["scalar_clamped"])
    values = encoding.convert_model(_model(case["model"]), config.vect.data_type)
    quantized = encoding.quantize(values, scalar, config.vect)
    assert quantized == [int(y) for y in case["quantized"]]
    assert encoding.encode_scalar(scalar, config.unit) == int(case["scalar_encoded"])
    mask = derive_mask(seed, config=config, length=len(quantized), path="pure")
    q_v, q_u = config.vect.order, config.unit.order
    masked = MaskObject.from_bytes(_h(case["object"]))
    assert masked.vect.elements() == [
        (y + r) % q_v for y, r in zip(quantized, mask.vect.elements(), strict=True)
    ]
    assert masked.unit.value == (int(case["scalar_encoded"]) + mask.unit.value) % q_u


@pytest.mark.parametrize(("case", "path"), list(_with_paths(MASK["aggregation"])))
def test_aggregation_and_unmasking(case: dict[str, Any], path: Any) -> None:
    config, length = _pair(case["config"]), case["length"]
    models = Aggregation(config, length, path=path)
    masks = Aggregation(config, length, path=path)
    for entry in case["models"]:
        seed = _h(entry["seed"])
        models.add(
            mask_model(
                seed,
                _model(entry["model"]),
                config=config,
                scalar=_fraction(entry["scalar"]),
                path=path,
            )
        )
        masks.add(derive_mask(seed, config=config, length=length, path=path))
    assert models.count == case["count"]
    assert models.result().to_bytes() == _h(case["aggregate"])
    assert masks.result().to_bytes() == _h(case["mask"])
    global_model = models.unmask(MaskObject.from_bytes(_h(case["mask"])))
    assert _floats_hex(global_model) == case["global_model"]["hex"]
    assert [repr(v) for v in global_model] == case["global_model"]["repr"]
    assert [float(_fraction(v)) for v in case["global_model"]["exact"]] == global_model


@pytest.mark.parametrize("case", MASK["aggregation"], ids=lambda c: c["name"])
def test_unmasked_sums(case: dict[str, Any]) -> None:
    """The aggregate minus the mask: the plain sums the global model is decoded from."""
    config = _pair(case["config"])
    aggregate = MaskObject.from_bytes(_h(case["aggregate"]))
    mask = MaskObject.from_bytes(_h(case["mask"]))
    q_v, q_u = config.vect.order, config.unit.order
    sums = [
        (a - m) % q_v for a, m in zip(aggregate.vect.elements(), mask.vect.elements(), strict=True)
    ]
    assert sums == [int(s) for s in case["vect_sums"]]
    unit_sum = (aggregate.unit.value - mask.unit.value) % q_u
    assert unit_sum == int(case["unit_sum"])
    mean = encoding.weighted_mean(sums, unit_sum, case["count"], config.vect, config.unit)
    assert _floats_hex(mean) == case["global_model"]["hex"]
    exact = [_fraction(v) for v in case["global_model"]["exact"]]
    weight = Fraction(unit_sum, config.unit.exp_shift) - case["count"] * config.unit.add_shift
    assert exact == [
        (Fraction(s, config.vect.exp_shift) - case["count"] * config.vect.add_shift) / weight
        for s in sums
    ]


# -- messages.json -----------------------------------------------------------------------------

COORDINATOR = MESSAGES["coordinator"]


def _round() -> tuple[crypto.EncryptKeyPair, RoundParameters]:
    keys = crypto.EncryptKeyPair.from_seed(_h(COORDINATOR["box_seed"]))
    assert keys.public == _h(COORDINATOR["public_key"])
    assert keys.secret == _h(COORDINATOR["secret_key"])
    params = RoundParameters.from_json_dict(MESSAGES["params"])
    assert params.coordinator_pk == keys.public
    assert params.seed == next_round_seed(
        INITIAL_ROUND_SEED, keys.secret, params.sum_probability, params.update_probability
    )
    return keys, params


def _open(entry: dict[str, Any], keys: crypto.EncryptKeyPair) -> tuple[bytes, Message]:
    """Open the sealed message, check it is the plaintext, parse and verify it."""
    plaintext = _h(entry["plaintext"])
    assert open_message(_h(entry["sealed"]), keys) == plaintext
    assert len(_h(entry["sealed"])) == len(plaintext) + crypto.SEALED_BOX_OVERHEAD
    header = parse_header(plaintext)
    assert header.length == len(plaintext)
    message = Message.from_bytes(plaintext)  # verifies the signature
    assert message.coordinator_pk == keys.public
    return plaintext, message


def _summer_keys(index: int) -> crypto.SigningKeyPair:
    summer = MESSAGES["summers"][index]
    keys = crypto.SigningKeyPair.from_seed(_h(summer["signing_seed"]))
    assert keys.public == _h(summer["public_key"])
    return keys


def _updater_keys(index: int) -> crypto.SigningKeyPair:
    updater = MESSAGES["updaters"][index]
    keys = crypto.SigningKeyPair.from_seed(_h(updater["signing_seed"]))
    assert keys.public == _h(updater["public_key"])
    return keys


def _sum_dict() -> dict[bytes, bytes]:
    return {_h(s["public_key"]): _h(s["ephemeral_public_key"]) for s in MESSAGES["summers"]}


@pytest.mark.parametrize("entry", MESSAGES["sum"], ids=lambda e: str(e["summer"]))
def test_sum_message(entry: dict[str, Any]) -> None:
    coordinator, params = _round()
    summer = MESSAGES["summers"][entry["summer"]]
    keys = _summer_keys(entry["summer"])
    plaintext, message = _open(entry, coordinator)
    assert len(plaintext) == 232
    assert message.tag is Tag.SUM
    assert message.participant_pk == keys.public
    assert isinstance(message.payload, Sum)
    assert message.payload.sum_signature == _h(summer["sum_signature"])
    assert message.payload.ephm_pk == _h(summer["ephemeral_public_key"])
    assert verify_sum_eligibility(
        keys.public, params.seed, message.payload.sum_signature, params.sum_probability
    )
    assert message.to_bytes(keys) == plaintext  # Ed25519 is deterministic
    decision = choose_role(keys, params)
    assert decision.role is Role.SUM
    task = SumTask(keys, params, decision, _h(summer["ephemeral_seed"]))
    assert task.ephemeral_keys.secret == _h(summer["ephemeral_secret_key"])
    assert task.sum_message().to_bytes(keys) == plaintext


@pytest.mark.parametrize(("entry", "path"), list(_with_paths(MESSAGES["update"], "updater")))
def test_update_message(entry: dict[str, Any], path: Any) -> None:
    coordinator, params = _round()
    updater = MESSAGES["updaters"][entry["updater"]]
    keys = _updater_keys(entry["updater"])
    plaintext, message = _open(entry, coordinator)
    assert message.tag is Tag.UPDATE
    assert message.participant_pk == keys.public
    payload = message.payload
    assert isinstance(payload, Update)
    assert payload.sum_signature == _h(updater["sum_signature"])
    assert payload.update_signature == _h(updater["update_signature"])
    assert verify_update_eligibility(
        keys.public,
        params.seed,
        payload.sum_signature,
        payload.update_signature,
        params.sum_probability,
        params.update_probability,
    )
    assert message.to_bytes(keys) == plaintext

    mask_seed = _h(updater["mask_seed"])
    model, scalar = _model(updater["model"]), _fraction(updater["scalar"])
    expected = mask_model(mask_seed, model, config=params.mask_config, scalar=scalar, path=path)
    assert payload.masked_model == expected
    assert payload.masked_model.to_bytes() == _h(entry["masked_model"])

    # Every summer can open the seed; the entries are in ascending summer key order.
    ephemeral = {
        _h(s["public_key"]): crypto.EncryptKeyPair.from_seed(_h(s["ephemeral_seed"]))
        for s in MESSAGES["summers"]
    }
    assert list(payload.local_seed_dict) == sorted(ephemeral)
    assert [_h(e["summer_public_key"]) for e in entry["local_seed_dict"]] == sorted(ephemeral)
    for item in entry["local_seed_dict"]:
        summer_pk, sealed_seed = _h(item["summer_public_key"]), _h(item["sealed_seed"])
        assert payload.local_seed_dict[summer_pk] == sealed_seed
        assert ephemeral[summer_pk].open(sealed_seed) == mask_seed

    # The participant API builds the same message, up to the randomized sealed seeds.
    decision = choose_role(keys, params)
    assert decision.role is Role.UPDATE
    built = UpdateTask(keys, params, decision).update_message(
        model, scalar=scalar, mask_seed=mask_seed, sum_dict=_sum_dict()
    )
    assert isinstance(built.payload, Update)
    assert built.payload.masked_model == payload.masked_model
    assert list(built.payload.local_seed_dict) == list(payload.local_seed_dict)
    assert built.byte_length == len(plaintext)
    rebuilt = Update(
        built.payload.sum_signature,
        built.payload.update_signature,
        built.payload.masked_model,
        payload.local_seed_dict,
    )
    assert Message(keys.public, coordinator.public, rebuilt).to_bytes(keys) == plaintext


def _column(summer_pk: bytes) -> dict[bytes, bytes]:
    """The summer's column of the global seed dict: updater pk -> sealed seed."""
    column = {}
    for entry in MESSAGES["update"]:
        updater_pk = _updater_keys(entry["updater"]).public
        for item in entry["local_seed_dict"]:
            if _h(item["summer_public_key"]) == summer_pk:
                column[updater_pk] = _h(item["sealed_seed"])
    return column


@pytest.mark.parametrize("entry", MESSAGES["sum2"], ids=lambda e: str(e["summer"]))
def test_sum2_message(entry: dict[str, Any]) -> None:
    coordinator, params = _round()
    summer = MESSAGES["summers"][entry["summer"]]
    keys = _summer_keys(entry["summer"])
    plaintext, message = _open(entry, coordinator)
    assert message.tag is Tag.SUM2
    assert isinstance(message.payload, Sum2)
    assert message.payload.sum_signature == _h(summer["sum_signature"])
    assert message.payload.model_mask.to_bytes() == _h(entry["model_mask"])
    assert message.to_bytes(keys) == plaintext

    # The mask is the sum of the masks of every updater's seed.
    masks = Aggregation(params.mask_config, params.model_length, path="pure")
    for updater in MESSAGES["updaters"]:
        masks.add(
            derive_mask(
                _h(updater["mask_seed"]),
                config=params.mask_config,
                length=params.model_length,
                path="pure",
            )
        )
    assert masks.result() == message.payload.model_mask

    task = SumTask(keys, params, choose_role(keys, params), _h(summer["ephemeral_seed"]))
    assert task.sum2_message(_column(keys.public)).to_bytes(keys) == plaintext


def test_global_model() -> None:
    coordinator, params = _round()
    aggregation = Aggregation(params.mask_config, params.model_length, path="pure")
    for entry in MESSAGES["update"]:
        _, message = _open(entry, coordinator)
        assert isinstance(message.payload, Update)
        aggregation.add(message.payload.masked_model)
    votes = {e["model_mask"] for e in MESSAGES["sum2"]}
    assert len(votes) == 1
    global_model = aggregation.unmask(MaskObject.from_bytes(_h(votes.pop())))
    assert _floats_hex(global_model) == MESSAGES["global_model"]["hex"]
    assert [repr(v) for v in global_model] == MESSAGES["global_model"]["repr"]


def test_chunked_update() -> None:
    coordinator, _ = _round()
    vectors = MESSAGES["chunked"]
    keys = _updater_keys(vectors["updater"])
    update_entry = MESSAGES["update"][vectors["updater"]]
    whole = Message.from_bytes(_h(update_entry["plaintext"]))
    payload = whole.payload.to_bytes()
    size = vectors["max_message_size"] - 192
    reassembler = Reassembler(
        max_bytes_per_participant=1 << 20,
        max_messages_per_participant=1,
        max_chunks_per_message=64,
        max_total_bytes=1 << 20,
    )
    chunks = vectors["chunks"]
    result = None
    for index, entry in enumerate(chunks):
        plaintext, message = _open(entry, coordinator)
        assert len(_h(entry["sealed"])) <= vectors["max_message_size"]
        assert message.tag is Tag.UPDATE
        assert parse_header(plaintext).is_multipart
        chunk = message.payload
        assert isinstance(chunk, Chunk)
        assert chunk.chunk_id == entry["chunk_id"] == index
        assert chunk.message_id == vectors["message_id"]
        assert chunk.last is entry["last"] is (index == len(chunks) - 1)
        assert chunk.data == _h(entry["data"]) == payload[index * size : (index + 1) * size]
        assert message.to_bytes(keys) == plaintext
        result = reassembler.add(message)
        assert (result is None) is not chunk.last
    assert b"".join(_h(e["data"]) for e in chunks) == payload
    assert result == whole
    parts = split_message(
        whole, max_message_size=vectors["max_message_size"], message_id=vectors["message_id"]
    )
    assert [part.to_bytes(keys) for part in parts] == [_h(e["plaintext"]) for e in chunks]


# -- the generator -----------------------------------------------------------------------------


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_protocol", VECTORS_DIR / "generate_protocol.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _regenerated(filename: str) -> tuple[str, str]:
    module = _generator()
    builder: Callable[[], dict[str, Any]] = module.BUILDERS[filename]
    return module.render(builder()), (VECTORS_DIR / filename).read_text(encoding="utf-8")


@pytest.mark.parametrize("filename", ["eligibility.json", "round.json", "mask.json"])
def test_generator_reproduces(filename: str) -> None:
    """The committed file is exactly what the generator's builder returns today."""
    regenerated, committed = _regenerated(filename)
    assert regenerated == committed


@pytest.mark.pynacl
def test_generator_reproduces_messages() -> None:
    """As above; building the deterministic sealed boxes needs PyNaCl's crypto_box."""
    regenerated, committed = _regenerated("messages.json")
    assert regenerated == committed
