"""The PET engine, phase by phase, with a fake clock over MemoryStorage (wrapped to fail on demand).

Messages go straight to ``Engine.submit``; the participants are the protocol core's tasks. Every
round that completes is checked against the weighted mean of the updates that were accepted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from support import (
    Clock,
    EngineDriver,
    FlakyStorage,
    Fleet,
    RecordingBus,
    Reply,
    RoundRun,
    assert_model,
    make_engine,
    make_settings,
    seal,
)

from xaynet import crypto
from xaynet.eligibility import update_signature
from xaynet.mask import MaskConfig, MaskConfigPair, derive_mask
from xaynet.message import Message, Sum, Update
from xaynet.round import INITIAL_ROUND_SEED, next_round_seed
from xaynet_coordinator.engine import Engine, StartupError
from xaynet_coordinator.model_store import DirectoryModelStore, make_model_id
from xaynet_coordinator.phase import Phase
from xaynet_coordinator.settings import Settings

pytestmark = pytest.mark.anyio

OTHER_MASK = MaskConfigPair(
    MaskConfig.from_names("Prime", "F32", "B2", "M3"),
    MaskConfig.from_names("Prime", "F32", "B0", "M3"),
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "models")


@pytest.fixture
def storage() -> FlakyStorage:
    return FlakyStorage()


@pytest.fixture
def fleet() -> Fleet:
    return Fleet()


async def started(settings: Settings, storage: FlakyStorage, clock: Clock, **kw: object) -> Engine:
    """An engine that started and ticked into the Sum phase of its first round."""
    engine = make_engine(settings, storage=storage, clock=clock, **kw)
    await engine.start()
    await engine.tick()
    assert engine.state.phase is Phase.SUM
    return engine


def bus(engine: Engine) -> RecordingBus:
    assert isinstance(engine.events, RecordingBus)
    return engine.events


def new_run(engine: Engine, clock: Clock, fleet: Fleet, **kw: int) -> RoundRun:
    return RoundRun(engine, clock, EngineDriver(engine), fleet, **kw)


def reasons(replies: Sequence[Reply]) -> list[str]:
    return [r.reason for r in replies]


# -- a whole round ---------------------------------------------------------------------------------


async def test_rounds_publish_the_weighted_mean_and_chain_seeds_and_keys(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    engine = await started(settings, storage, clock)
    store = engine.model_store
    previous_seed = INITIAL_ROUND_SEED
    for round_id in (1, 2):
        run = new_run(engine, clock, fleet)
        params = run.params
        assert params.round_id == round_id
        # the seed chain: signed with the key whose seed is the new round secret key
        assert engine.state.round_keys is not None
        assert engine.state.round_keys.public == params.coordinator_pk
        assert params.seed == next_round_seed(
            previous_seed, engine.state.round_keys.secret, 0.4, 0.9
        )
        expected = await run.play()

        model = engine.global_model
        assert model is not None
        assert model.round_id == round_id
        assert_model(model.values, expected)
        assert model.model_id == make_model_id(round_id, params.seed)
        assert model.model_id == f"{round_id}_{params.seed.hex()}"
        stored = np.frombuffer(await store.load(model.model_id), dtype="<f8")
        assert_model(stored, expected)
        assert await storage.latest_model_id() == model.model_id
        # the next round runs already, with a new key
        assert engine.state.round_id == round_id + 1
        assert engine.state.phase is Phase.SUM
        new_params = engine.round_parameters()
        assert new_params is not None
        assert new_params.coordinator_pk != params.coordinator_pk
        previous_seed = params.seed

    assert bus(engine).phases() == [
        (r, p) for r in (1, 2) for p in ("sum", "update", "sum2", "unmask", "idle")
    ] + [(3, "sum")]
    models = [e.data for e in bus(engine).log if e.kind == "model"]
    assert [m["round_id"] for m in models] == [1, 2]
    # the dictionaries of round 2 do not hold round 1's participants
    assert await storage.sum_dict() == {}
    assert await storage.update_count() == 0


async def test_the_round_counts_what_it_accepted(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet, summers=2, updaters=4)
    await run.send_sums()
    await run.send_sums(run.summers[:1])  # a duplicate: rejected
    assert engine.snapshot()["counts"]["sum"] == {"accepted": 2, "rejected": 1, "discarded": 0}
    assert engine.snapshot()["window"]["accepted"] == 2
    await run.close_phase(Phase.UPDATE)
    assert engine.snapshot()["summers"] == 2
    await run.send_updates()
    assert engine.snapshot()["updates_aggregated"] == 4
    assert engine.snapshot()["counts"]["update"]["accepted"] == 4


# -- timeouts --------------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", [Phase.SUM, Phase.UPDATE, Phase.SUM2])
async def test_too_few_messages_by_time_max_fail_the_round_and_a_new_one_starts(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet, phase: Phase
) -> None:
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet)
    first_key = run.params.coordinator_pk
    if phase is not Phase.SUM:
        await run.send_sums(close=True)
        if phase is Phase.UPDATE:
            await run.send_updates(run.updaters[:2])  # count.min is 3
        else:
            await run.send_updates(close=True)  # and no summer sends its mask
    started_at = engine.state.phase_started_at
    clock.now = started_at + 9.9  # time.max is 10
    await engine.tick()
    assert engine.state.phase is phase
    assert engine.state.round_id == 1

    clock.now = started_at + 10
    await engine.tick()
    # failed, recovered at once (storage answers) and started round 2
    assert engine.state.phase is Phase.SUM
    assert engine.state.round_id == 2
    assert engine.global_model is None
    assert bus(engine).phases()[-4:] == [
        (1, phase.value),
        (1, "failure"),
        (1, "idle"),
        (2, "sum"),
    ]
    (failure,) = storage.failures()
    assert f"{phase.value} phase timed out" in failure
    last = engine.snapshot()["last_failure"]  # still visible after the recovery
    assert last["round_id"] == 1
    assert last["phase"] == phase.value
    assert f"{phase.value} phase timed out" in last["reason"]
    params = engine.round_parameters()
    assert params is not None
    assert params.coordinator_pk != first_key


# -- counting window -------------------------------------------------------------------------------


async def test_count_max_ends_a_phase_early_and_later_messages_are_discarded(
    tmp_path: Path, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    settings = make_settings(
        tmp_path,
        pet={
            "sum": {"count": {"max": 2}},
            "update": {"count": {"max": 3}},
            "sum2": {"count": {"max": 2}},
        },
    )
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet, summers=3, updaters=4)
    summers, updaters = run.summers, run.updaters

    assert reasons(await run.send_sums(summers[:2])) == ["accepted"] * 2
    reply = await run.driver.send(summers[2].sum_body())
    assert reply == (503, "phase_full")
    assert engine.snapshot()["counts"]["sum"]["discarded"] == 1
    await engine.tick()  # no time has passed: count.max alone ends the phase
    assert engine.state.phase is Phase.UPDATE
    assert await run.driver.send(summers[2].sum_body()) == (409, "wrong_phase")
    run.summers = summers[:2]

    assert reasons(await run.send_updates(updaters[:3])) == ["accepted"] * 3
    assert reasons(await run.send_updates(updaters[3:])) == ["phase_full"]
    await engine.tick()
    assert engine.state.phase is Phase.SUM2
    assert reasons(await run.send_updates(updaters[3:])) == ["wrong_phase"]

    await run.send_sum2s()
    await engine.tick()
    assert engine.state.phase is Phase.SUM
    assert engine.global_model is not None
    # the discarded update is not in the global model
    assert_model(engine.global_model.values, run.expected())
    assert len(run.models) == 3


async def test_a_message_arriving_while_the_phase_closes_is_discarded(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet)
    first, second = run.summers
    gate = storage.gate("add_summer")
    in_flight = asyncio.create_task(run.driver.send(first.sum_body()))
    await gate.entered.wait()

    clock.advance(10)  # time.max: the window closes, but waits for the message in flight
    await engine.tick()
    assert engine.state.phase is Phase.SUM
    assert await run.driver.send(second.sum_body()) == (503, "phase_closing")
    assert engine.snapshot()["counts"]["sum"]["discarded"] == 1

    gate.open()
    assert await in_flight == (202, "accepted")
    await engine.tick()
    assert engine.state.phase is Phase.UPDATE
    assert engine.sum_dict() == {first.pk: first.sum_task().ephemeral_pk}
    assert await run.driver.send(second.sum_body()) == (409, "wrong_phase")


async def test_time_min_holds_a_phase_open_until_it_passed(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet)
    await run.send_sums()
    clock.advance(0.9)
    await engine.tick()
    assert engine.state.phase is Phase.SUM
    clock.advance(0.1)
    await engine.tick()
    assert engine.state.phase is Phase.UPDATE


# -- rejected messages -----------------------------------------------------------------------------


async def test_no_messages_before_the_first_round(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    engine = make_engine(settings, storage=storage, clock=clock)
    await engine.start()
    assert engine.state.phase is Phase.IDLE
    outcome = await engine.submit(b"\x00" * 300)
    assert (outcome.status, outcome.reason) == (503, "not_accepting")


async def test_messages_of_another_phase_get_wrong_phase(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet)
    summer, updater = run.summers[0], run.updaters[0]
    fake_seeds = [(s.pk, bytes(80)) for s in run.summers]

    def update_body() -> bytes:
        return updater.update_body_with(updater.masked([0.0] * 8), fake_seeds)

    def sum2_body() -> bytes:
        return summer.sum2_body_with(summer.random_mask())

    assert await run.driver.send(update_body()) == (409, "wrong_phase")
    assert await run.driver.send(sum2_body()) == (409, "wrong_phase")
    await run.send_sums(close=True)
    assert await run.driver.send(summer.sum_body()) == (409, "wrong_phase")
    assert await run.driver.send(sum2_body()) == (409, "wrong_phase")
    await run.send_updates(close=True)
    assert await run.driver.send(summer.sum_body()) == (409, "wrong_phase")
    assert await run.driver.send(update_body()) == (409, "wrong_phase")
    # none of them counted anywhere
    assert await storage.update_count() == 3
    assert len(await storage.sum_dict()) == 2
    await run.send_sum2s(close=True)
    assert engine.global_model is not None
    assert_model(engine.global_model.values, run.expected())


async def test_duplicates_get_already_submitted_and_do_not_count(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet)
    await run.send_sums()
    assert reasons(await run.send_sums(run.summers[:1])) == ["already_submitted"]
    await run.close_phase(Phase.UPDATE)
    await run.send_updates()
    # the same updater again, with another model: refused, and not in the aggregate
    (again,) = await run.send_updates(run.updaters[:1])
    assert again == (409, "already_submitted")
    assert len(run.models) == 3
    assert engine.snapshot()["updates_aggregated"] == 3
    await run.close_phase(Phase.SUM2)
    await run.send_sum2s()
    assert reasons(await run.send_sum2s(run.summers[1:])) == ["already_submitted"]
    votes = await storage.best_masks()
    assert [v.votes for v in votes] == [2]
    await run.close_phase(Phase.SUM)
    assert engine.global_model is not None
    assert_model(engine.global_model.values, run.expected())


async def test_a_local_seed_dict_must_name_every_summer_and_only_summers(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet)
    await run.send_sums(close=True)
    sum_dict = await run.fetch_sum_dict()
    updater, outsider = run.updaters[0], run.updaters[1]
    seeds = updater.update_task().local_seed_dict(updater.mask_seed(), sum_dict)
    entries = list(seeds.items())
    masked = updater.masked([0.5] * 8)

    missing = updater.update_body_with(masked, entries[:1])
    assert await run.driver.send(missing) == (400, "seed_dict_length")
    extra = updater.update_body_with(masked, [*entries, (outsider.pk, bytes(80))])
    assert await run.driver.send(extra) == (400, "seed_dict_length")
    unknown = updater.update_body_with(masked, [entries[0], (outsider.pk, entries[1][1])])
    assert await run.driver.send(unknown) == (403, "unknown_summer")
    # nothing of the refused updates was written: the updater can still send a good one
    assert await storage.update_count() == 0
    assert await storage.seed_dict_column(run.summers[0].pk) == {}
    assert reasons(await run.send_updates()) == ["accepted"] * 3
    await run.close_phase(Phase.SUM2)
    await run.send_sum2s(close=True)
    assert engine.global_model is not None
    assert_model(engine.global_model.values, run.expected())


async def test_masked_models_and_masks_that_misfit_the_round_are_refused(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet)
    await run.send_sums(close=True)
    sum_dict = await run.fetch_sum_dict()
    updater = run.updaters[0]
    seeds = list(updater.update_task().local_seed_dict(updater.mask_seed(), sum_dict).items())

    too_short = updater.masked([0.5] * 7)
    assert await run.driver.send(updater.update_body_with(too_short, seeds)) == (
        400,
        "invalid_masked_model",
    )
    other_config = updater.masked([0.5] * 8, config=OTHER_MASK)
    assert await run.driver.send(updater.update_body_with(other_config, seeds)) == (
        400,
        "invalid_masked_model",
    )
    assert engine.snapshot()["updates_aggregated"] == 0
    assert await storage.update_count() == 0
    await run.send_updates(close=True)

    summer = run.summers[0]
    wrong_length = derive_mask(bytes(32), config=run.params.mask_config, length=7)
    assert await run.driver.send(summer.sum2_body_with(wrong_length)) == (400, "invalid_mask")
    assert await storage.distinct_masks() == 0
    await run.send_sum2s(close=True)
    assert engine.global_model is not None
    assert_model(engine.global_model.values, run.expected())


async def test_only_summers_of_the_round_send_sum2(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet, summers=3)
    late_summer = run.summers[2]  # eligible for the sum task, but sent no Sum message
    await run.send_sums(run.summers[:2], close=True)
    run.summers = run.summers[:2]
    await run.send_updates(close=True)
    seeds = await run.seeds_of(run.summers[0])
    # the column of another summer opens with its own key only, so send a mask directly
    body = late_summer.sum2_body_with(run.summers[0].sum_task().model_mask(seeds))
    assert await run.driver.send(body) == (403, "unknown_summer")
    # an updater's sum signature does not make it a summer
    updater = run.updaters[0]
    assert await run.driver.send(updater.sum2_body_with(updater.random_mask())) == (
        403,
        "not_eligible",
    )
    assert await storage.distinct_masks() == 0


async def test_a_tie_between_masks_fails_the_round(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet)
    await run.send_sums(close=True)
    await run.send_updates(close=True)
    honest, liar = run.summers
    assert reasons(await run.send_sum2s([honest])) == ["accepted"]
    assert await run.driver.send(liar.sum2_body_with(liar.random_mask())) == (202, "accepted")
    await run.close_phase(Phase.SUM)
    assert engine.global_model is None
    assert engine.state.round_id == 2
    (failure,) = storage.failures()
    assert "ambiguous" in failure
    assert (1, "failure") in bus(engine).phases()


async def test_the_mask_with_most_votes_wins(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet, summers=3)
    await run.send_sums(close=True)
    await run.send_updates(close=True)
    liar = run.summers[1]
    await run.send_sum2s([run.summers[0], run.summers[2]])
    assert await run.driver.send(liar.sum2_body_with(liar.random_mask())) == (202, "accepted")
    await run.close_phase(Phase.SUM)
    assert storage.failures() == []
    assert engine.global_model is not None
    assert_model(engine.global_model.values, run.expected())


async def test_a_message_sealed_to_the_previous_round_key_is_stale(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet)
    old_body = run.summers[0].sum_body()
    clock.advance(10)  # nobody sent a Sum: round 1 fails, round 2 starts
    await engine.tick()
    assert engine.state.round_id == 2
    assert await run.driver.send(old_body) == (410, "stale_round")
    clock.advance(10)
    await engine.tick()
    assert engine.state.round_id == 3
    # two rounds back: just a box the coordinator cannot open
    assert await run.driver.send(old_body) == (400, "undecryptable")


async def test_bodies_that_do_not_open_or_verify_are_refused(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet)
    send = run.driver.send
    assert await send(bytes(range(256)) * 2) == (400, "undecryptable")
    assert await send(b"short") == (400, "malformed")

    summer = run.summers[0]
    signed = bytearray(summer.sum_message().to_bytes(summer.keys))
    signed[5] ^= 0x01  # inside the signature
    assert await send(crypto.seal(run.params.coordinator_pk, bytes(signed))) == (
        403,
        "bad_signature",
    )
    # a message naming another coordinator key, sealed to this round's key
    other = Message(summer.pk, bytes(32), Sum(summer.decision.sum_signature, bytes(32)))
    sealed = crypto.seal(run.params.coordinator_pk, other.to_bytes(summer.keys))
    assert await send(sealed) == (400, "wrong_coordinator_key")
    assert await storage.sum_dict() == {}
    assert engine.snapshot()["counts"]["sum"] == {"accepted": 0, "rejected": 0, "discarded": 0}


async def test_participants_must_be_eligible_for_their_task(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet)
    updater = run.updaters[0]
    # an updater's sum signature does not select it for the sum task
    assert await run.driver.send(updater.sum_body()) == (403, "not_eligible")
    await run.send_sums(close=True)
    sum_dict = await run.fetch_sum_dict()

    summer = run.summers[0]
    masked = summer.masked([0.1] * 8)
    seeds = updater.update_task().local_seed_dict(summer.mask_seed(), sum_dict)
    # a summer that also claims the update task: its sum signature selects it for summing
    as_updater = Message(
        summer.pk,
        run.params.coordinator_pk,
        Update(
            summer.decision.sum_signature,
            update_signature(summer.keys, run.params.seed),
            masked,
            seeds,
        ),
    )
    (body,) = seal(as_updater, summer.keys)
    assert await run.driver.send(body) == (403, "not_eligible")
    # an updater with a sum signature that is no signature of its key
    assert updater.decision.update_signature is not None
    forged = Message(
        updater.pk,
        run.params.coordinator_pk,
        Update(bytes(64), updater.decision.update_signature, masked, seeds),
    )
    (body,) = seal(forged, updater.keys)
    assert await run.driver.send(body) == (403, "not_eligible")
    assert await storage.update_count() == 0


# -- storage failures ------------------------------------------------------------------------------


@pytest.mark.parametrize("position", [0, 2], ids=["first", "last"])
@pytest.mark.parametrize("written", [False, True], ids=["before-write", "after-write"])
async def test_a_storage_error_while_adding_an_update_keeps_the_aggregate_consistent(
    settings: Settings,
    storage: FlakyStorage,
    clock: Clock,
    fleet: Fleet,
    *,
    position: int,
    written: bool,
) -> None:
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet, updaters=3)  # count.min is 3: each one is needed
    await run.send_sums(close=True)
    unlucky = run.updaters[position]
    for updater in run.updaters:
        if updater is unlucky:
            storage.fail("add_update", after=written, times=1)
            (reply,) = await run.send_update(updater)
            assert reply == (503, "storage_unavailable")
        else:
            assert await run.send_update(updater) == [(202, "accepted")]
    if written:
        # the update reached storage before the error: it counts, and a retry is a duplicate
        run.include(unlucky)
        if position == 0:
            (retry,) = await run.send_update(unlucky)
            assert retry == (409, "already_submitted")
        # else no message follows: the engine itself must notice what storage holds
    else:
        (retry,) = await run.send_update(unlucky)
        assert retry == (202, "accepted")
    await run.close_phase(Phase.SUM2)  # not a timeout: the written update counts
    aggregation = engine.round.aggregation
    assert aggregation is not None
    assert aggregation.count == await storage.update_count() == len(run.models) == 3
    await run.send_sum2s(close=True)
    assert storage.failures() == []
    assert engine.global_model is not None
    assert_model(engine.global_model.values, run.expected())


async def test_a_storage_error_at_a_transition_fails_the_round_until_storage_answers(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    engine = await started(settings, storage, clock, failure_retry=5.0)
    run = new_run(engine, clock, fleet)
    await run.send_sums()
    storage.down = True
    clock.advance(1)
    await engine.tick()
    assert engine.state.phase is Phase.FAILURE
    assert engine.state.failure is not None
    assert "storage is down" in engine.state.failure
    assert await run.driver.send(run.summers[0].sum_body()) == (503, "not_accepting")

    clock.advance(10)
    await engine.tick()  # storage still down
    assert engine.state.phase is Phase.FAILURE
    storage.heal()
    clock.advance(1)
    await engine.tick()  # storage answers, but the next check is not due yet
    assert engine.state.phase is Phase.FAILURE
    clock.advance(4)
    await engine.tick()
    assert engine.state.phase is Phase.SUM
    assert engine.state.round_id == 2
    assert engine.state.failure is None
    # the new round works
    expected = await new_run(engine, clock, fleet).play()
    assert engine.global_model is not None
    assert engine.global_model.round_id == 2
    assert_model(engine.global_model.values, expected)


async def test_a_model_store_error_at_unmask_fails_the_round(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet)
    await run.send_sums(close=True)
    await run.send_updates(close=True)
    await run.send_sum2s()
    engine.model_store = DirectoryModelStore(blocker)  # saving into a file fails
    clock.advance(1)
    await engine.tick()
    assert engine.state.phase is Phase.FAILURE  # the store is not ready either: no recovery
    assert engine.global_model is None
    assert await storage.latest_model_id() is None
    assert engine.state.failure is not None
    assert engine.state.failure.startswith("unmask")


# -- restart ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("checkpoint_every", [2, 25])
async def test_a_restarted_engine_resumes_the_update_phase_with_every_accepted_update(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet, checkpoint_every: int
) -> None:
    engine = await started(settings, storage, clock, checkpoint_every=checkpoint_every)
    run = new_run(engine, clock, fleet, updaters=4)
    await run.send_sums(close=True)
    await run.send_updates(run.updaters[:3])
    checkpoint = await storage.load_checkpoint()
    assert (checkpoint.count if checkpoint else 0) == (2 if checkpoint_every == 2 else 0)

    # a new process over the same storage and model store, with other random bytes
    clock.advance(0.5)
    restarted = make_engine(
        settings, storage=storage, clock=clock, seed=99, checkpoint_every=checkpoint_every
    )
    await restarted.start()
    assert restarted.state.phase is Phase.UPDATE
    assert restarted.state.round_id == 1
    assert restarted.round_parameters() == run.params
    assert restarted.round.aggregation is not None
    assert restarted.round.aggregation.count == 3
    assert restarted.window is not None
    assert restarted.window.accepted == 3
    assert restarted.sum_dict() == engine.sum_dict()

    run.engine, run.driver = restarted, EngineDriver(restarted)
    assert reasons(await run.send_updates(run.updaters[:1])) == ["already_submitted"]
    assert reasons(await run.send_updates(run.updaters[3:])) == ["accepted"]
    await run.close_phase(Phase.SUM2)
    await run.send_sum2s(close=True)
    assert restarted.global_model is not None
    assert len(run.models) == 4
    assert_model(restarted.global_model.values, run.expected())


async def test_a_restarted_engine_resumes_the_sum_and_sum2_phases(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet)
    first = run.summers[0]
    await run.send_sums([first])
    engine = make_engine(settings, storage=storage, clock=clock, seed=5)
    await engine.start()
    assert engine.state.phase is Phase.SUM
    assert engine.window is not None
    assert engine.window.accepted == 1
    run.engine, run.driver = engine, EngineDriver(engine)
    assert reasons(await run.send_sums()) == ["already_submitted", "accepted"]
    await run.close_phase(Phase.UPDATE)
    await run.send_updates(close=True)
    await run.send_sum2s([first])

    engine = make_engine(settings, storage=storage, clock=clock, seed=6)
    await engine.start()
    assert engine.state.phase is Phase.SUM2
    assert engine.window is not None
    assert engine.window.accepted == 1
    run.engine, run.driver = engine, EngineDriver(engine)
    # the seeds are published again, and both votes count
    assert reasons(await run.send_sum2s()) == ["already_submitted", "accepted"]
    assert [v.votes for v in await storage.best_masks()] == [2]
    await run.close_phase(Phase.SUM)
    assert engine.global_model is not None
    assert_model(engine.global_model.values, run.expected())


@pytest.mark.parametrize("change", ["mask", "model_length"])
async def test_a_restart_with_another_mask_config_or_length_starts_a_new_round(
    tmp_path: Path, storage: FlakyStorage, clock: Clock, fleet: Fleet, change: str
) -> None:
    settings = make_settings(tmp_path)
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet)
    await run.send_sums(close=True)
    await run.send_updates(run.updaters[:2])

    if change == "mask":
        restarted = make_engine(settings, storage=storage, clock=clock, seed=3, mask=OTHER_MASK)
    else:
        restarted = make_engine(
            make_settings(tmp_path, model={"length": 5}), storage=storage, clock=clock, seed=3
        )
    await restarted.start()
    await restarted.tick()
    assert restarted.state.phase is Phase.SUM
    assert restarted.state.round_id == 2
    params = restarted.round_parameters()
    assert params is not None
    assert params.coordinator_pk != run.params.coordinator_pk
    if change == "mask":
        assert params.mask_config == OTHER_MASK
    else:
        assert params.model_length == 5
    # the old round's dictionaries and journal are gone
    assert await storage.sum_dict() == {}
    assert await storage.update_count() == 0
    assert await storage.journal() == []


async def test_the_latest_global_model_is_restored_at_start(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    engine = await started(settings, storage, clock)
    expected = await new_run(engine, clock, fleet).play()
    assert engine.global_model is not None
    restarted = make_engine(settings, storage=storage, clock=clock, initial_model=np.full(8, 7.0))
    await restarted.start()
    model = restarted.global_model
    assert model is not None
    assert model.round_id == 1
    assert model.model_id == engine.global_model.model_id
    assert_model(model.values, expected)  # the stored model wins over the initial one


async def test_the_initial_model_is_round_zero_until_a_round_completes(
    settings: Settings, storage: FlakyStorage, clock: Clock
) -> None:
    initial = np.linspace(-1, 1, 8)
    engine = make_engine(settings, storage=storage, clock=clock, initial_model=initial)
    await engine.start()
    assert engine.global_model is not None
    assert engine.global_model.round_id == 0
    assert engine.global_model.model_id is None
    assert_model(engine.global_model.values, initial)


async def test_a_missing_or_broken_stored_model_refuses_to_start(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    engine = await started(settings, storage, clock)
    await new_run(engine, clock, fleet).play()
    assert engine.global_model is not None
    model_id = engine.global_model.model_id
    assert model_id is not None
    path = Path(settings.models.directory) / model_id

    path.write_bytes(b"\x00" * 12)  # not 8 doubles
    with pytest.raises(StartupError, match=model_id):
        await make_engine(settings, storage=storage, clock=clock).start()
    path.write_bytes(b"\x00" * 8 * 5)  # a model of another length: model.length was changed
    restarted = make_engine(settings, storage=storage, clock=clock)
    await restarted.start()
    assert restarted.global_model is None  # not served, but no refusal either
    path.unlink()
    with pytest.raises(StartupError, match=f"{model_id} is missing"):
        await make_engine(settings, storage=storage, clock=clock).start()


# -- multipart -------------------------------------------------------------------------------------


async def test_chunked_updates_are_reassembled(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet)
    await run.send_sums(close=True)
    for updater in run.updaters:
        replies = await run.send_update(updater, max_message_size=250)
        assert len(replies) > 3
        assert reasons(replies) == ["chunk_buffered"] * (len(replies) - 1) + ["accepted"]
        assert {r.status for r in replies} == {202}
    assert engine.snapshot()["multipart"] == {"buffered_bytes": 0, "partial_messages": 0}
    await run.close_phase(Phase.SUM2)
    await run.send_sum2s(close=True)
    assert engine.global_model is not None
    assert_model(engine.global_model.values, run.expected())


async def test_chunk_buffers_are_bounded_and_dropped_when_the_phase_ends(
    tmp_path: Path, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    settings = make_settings(tmp_path, multipart={"max_bytes_per_participant": 200})
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet)
    await run.send_sums(close=True)
    sum_dict = await run.fetch_sum_dict()
    big, partial = run.updaters[0], run.updaters[1]
    bodies = big.update_bodies([0.0] * 8, sum_dict, max_message_size=250)
    replies = [await run.driver.send(body) for body in bodies[:5]]
    assert reasons(replies)[:3] == ["chunk_buffered"] * 3  # 3 * 58 bytes fit in 200
    assert replies[3] == (413, "too_large")

    bodies = partial.update_bodies([0.0] * 8, sum_dict, max_message_size=250)
    assert await run.driver.send(bodies[0]) == (202, "chunk_buffered")
    assert engine.snapshot()["multipart"]["partial_messages"] == 2
    await run.send_updates(run.updaters[2:])  # 1 update: not enough by time.max
    await run.send_updates(fleet.updaters(run.params, 4)[3:])
    await run.send_updates(fleet.updaters(run.params, 5)[4:])
    await run.close_phase(Phase.SUM2)
    assert engine.snapshot()["multipart"] == {"buffered_bytes": 0, "partial_messages": 0}
    # the rest of the partial message now belongs to no phase
    assert await run.driver.send(bodies[1]) == (409, "wrong_phase")


# -- shutdown --------------------------------------------------------------------------------------


async def test_after_shutdown_messages_get_shutting_down_and_the_round_stays_resumable(
    settings: Settings, storage: FlakyStorage, clock: Clock, fleet: Fleet
) -> None:
    engine = await started(settings, storage, clock)
    run = new_run(engine, clock, fleet)
    await run.send_sums(run.summers[:1])
    await engine.shutdown()
    assert engine.state.phase is Phase.SHUTDOWN
    assert await run.driver.send(run.summers[1].sum_body()) == (503, "shutting_down")
    clock.advance(20)
    await engine.tick()
    assert engine.state.phase is Phase.SHUTDOWN
    assert bus(engine).phases()[-1] == (1, "shutdown")
    assert storage.states[-1].phase is Phase.SUM  # not persisted: a restart resumes round 1
    restarted = make_engine(settings, storage=storage, clock=clock)
    await restarted.start()
    assert restarted.state.phase is Phase.SUM
    assert restarted.state.round_id == 1
