"""The storage contract (storage/base.py), run against every backend: memory and real Redis."""

from __future__ import annotations

import os

import anyio
import pytest

from xaynet_coordinator.storage.base import (
    Checkpoint,
    MaskVote,
    Storage,
    StorageError,
    UpdateRejection,
    VoteRejection,
)

pytestmark = pytest.mark.anyio

Snapshot = tuple[dict[bytes, dict[bytes, bytes]], int, list[bytes]]


def new_pk() -> bytes:
    return os.urandom(32)


def new_seed() -> bytes:
    return os.urandom(80)


async def add_summers(storage: Storage, count: int) -> list[bytes]:
    summers = [new_pk() for _ in range(count)]
    for summer in summers:
        assert await storage.add_summer(summer, new_pk())
    return summers


async def snapshot(storage: Storage, summers: list[bytes]) -> Snapshot:
    """Everything add_update writes: the seed columns, the update count and the journal."""
    columns = {summer: await storage.seed_dict_column(summer) for summer in summers}
    return columns, await storage.update_count(), await storage.journal()


async def accept(storage: Storage, summers: list[bytes], entry: bytes) -> bytes:
    updater = new_pk()
    result = await storage.add_update(updater, {s: new_seed() for s in summers}, entry)
    assert result is None
    return updater


# -- state and model id ---------------------------------------------------------------------------


async def test_state_is_none_then_saved_then_replaced(storage: Storage) -> None:
    assert await storage.load_state() is None
    first = bytes(range(256))  # every byte value: no decoding anywhere
    await storage.save_state(first)
    assert await storage.load_state() == first
    await storage.save_state(b"\xff\x00second")
    assert await storage.load_state() == b"\xff\x00second"


async def test_latest_model_id(storage: Storage) -> None:
    assert await storage.latest_model_id() is None
    await storage.set_latest_model_id("1_" + "ab" * 32)
    await storage.set_latest_model_id("2_" + "cd" * 32)
    assert await storage.latest_model_id() == "2_" + "cd" * 32


async def test_ping(storage: Storage) -> None:
    assert await storage.ping() is True


# -- sum dict -------------------------------------------------------------------------------------


async def test_add_summer_refuses_duplicates_and_keeps_the_first(storage: Storage) -> None:
    summer, ephm, other_ephm = new_pk(), new_pk(), new_pk()
    assert await storage.sum_dict() == {}
    assert await storage.add_summer(summer, ephm) is True
    assert await storage.add_summer(summer, other_ephm) is False
    second, second_ephm = b"\x00" * 32, b"\xff" * 32
    assert await storage.add_summer(second, second_ephm) is True
    assert await storage.sum_dict() == {summer: ephm, second: second_ephm}


async def test_returned_dicts_are_copies(storage: Storage) -> None:
    [summer] = await add_summers(storage, 1)
    await accept(storage, [summer], b"entry")
    sums = await storage.sum_dict()
    sums.clear()
    column = await storage.seed_dict_column(summer)
    column.clear()
    journal = await storage.journal()
    journal.clear()
    assert len(await storage.sum_dict()) == 1
    assert len(await storage.seed_dict_column(summer)) == 1
    assert await storage.journal() == [b"entry"]


# -- updates --------------------------------------------------------------------------------------


async def test_add_update_writes_columns_count_and_journal(storage: Storage) -> None:
    summers = await add_summers(storage, 3)
    first, second = new_pk(), new_pk()
    first_seeds = {s: new_seed() for s in summers}
    second_seeds = {s: new_seed() for s in reversed(summers)}  # order of the dict is irrelevant
    assert await storage.add_update(first, first_seeds, b"\x00model one\xff") is None
    assert await storage.add_update(second, second_seeds, b"model two") is None

    for summer in summers:
        assert await storage.seed_dict_column(summer) == {
            first: first_seeds[summer],
            second: second_seeds[summer],
        }
    assert await storage.seed_dict_column(new_pk()) == {}
    assert await storage.update_count() == 2
    assert await storage.journal() == [b"\x00model one\xff", b"model two"]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("too_few", UpdateRejection.LENGTH_MISMATCH),
        ("too_many", UpdateRejection.LENGTH_MISMATCH),
        ("empty", UpdateRejection.LENGTH_MISMATCH),
        ("unknown_summer", UpdateRejection.UNKNOWN_SUMMER),
        ("already_submitted", UpdateRejection.ALREADY_SUBMITTED),
        # the order of the checks: length, then summers, then the updater
        ("too_few_and_unknown", UpdateRejection.LENGTH_MISMATCH),
        ("resubmitted_with_unknown", UpdateRejection.UNKNOWN_SUMMER),
        ("resubmitted_too_short", UpdateRejection.LENGTH_MISMATCH),
    ],
)
async def test_add_update_rejection_writes_nothing(
    storage: Storage, case: str, expected: UpdateRejection
) -> None:
    summers = await add_summers(storage, 3)
    submitted = await accept(storage, summers, b"accepted")
    stranger = new_pk()
    before = await snapshot(storage, summers)

    full = {s: new_seed() for s in summers}
    updater = new_pk()
    seeds: dict[bytes, bytes]
    if case == "too_few":
        seeds = {s: full[s] for s in summers[:2]}
    elif case == "too_many":
        seeds = {**full, stranger: new_seed()}
    elif case == "empty":
        seeds = {}
    elif case == "unknown_summer":
        seeds = {**{s: full[s] for s in summers[:2]}, stranger: new_seed()}
    elif case == "already_submitted":
        updater, seeds = submitted, full
    elif case == "too_few_and_unknown":
        seeds = {summers[0]: new_seed(), stranger: new_seed()}
    elif case == "resubmitted_with_unknown":
        updater = submitted
        seeds = {**{s: full[s] for s in summers[:2]}, stranger: new_seed()}
    else:
        updater, seeds = submitted, {summers[0]: new_seed()}

    assert await storage.add_update(updater, seeds, b"rejected") is expected
    assert await snapshot(storage, summers) == before
    assert await storage.seed_dict_column(stranger) == {}

    if updater != submitted:
        # the refused updater was not recorded: a correct update is still accepted
        assert await storage.add_update(updater, full, b"retry") is None
        assert await storage.update_count() == 2
        assert await storage.journal() == [b"accepted", b"retry"]


async def test_large_binary_journal_entry(storage: Storage) -> None:
    [summer] = await add_summers(storage, 1)
    entry = os.urandom(2_000_000)
    await accept(storage, [summer], entry)
    assert await storage.journal() == [entry]


# -- mask votes -----------------------------------------------------------------------------------


async def test_add_mask_vote_rejections(storage: Storage) -> None:
    [summer] = await add_summers(storage, 1)
    mask, other = b"\x01mask", b"\x02other mask"

    assert await storage.add_mask_vote(new_pk(), mask) is VoteRejection.UNKNOWN_SUMMER
    assert await storage.distinct_masks() == 0
    assert await storage.best_masks() == []

    assert await storage.add_mask_vote(summer, mask) is None
    assert await storage.add_mask_vote(summer, mask) is VoteRejection.ALREADY_SUBMITTED
    assert await storage.add_mask_vote(summer, other) is VoteRejection.ALREADY_SUBMITTED
    assert await storage.distinct_masks() == 1
    assert await storage.best_masks(limit=5) == [MaskVote(mask, 1)]


async def test_best_masks_ordered_by_votes(storage: Storage) -> None:
    summers = await add_summers(storage, 6)
    a, b, c = b"mask a", b"mask b", b"\x00mask c\xff"
    for summer, mask in zip(summers, [c, a, b, a, c, a], strict=True):
        assert await storage.add_mask_vote(summer, mask) is None

    assert await storage.distinct_masks() == 3
    assert await storage.best_masks() == [MaskVote(a, 3), MaskVote(c, 2)]
    assert await storage.best_masks(limit=1) == [MaskVote(a, 3)]
    assert await storage.best_masks(limit=3) == [MaskVote(a, 3), MaskVote(c, 2), MaskVote(b, 1)]
    assert await storage.best_masks(limit=100) == await storage.best_masks(limit=3)


async def test_best_masks_reports_ties(storage: Storage) -> None:
    summers = await add_summers(storage, 5)
    a, b, c = os.urandom(64), os.urandom(64), os.urandom(64)
    for summer, mask in zip(summers, [a, b, c, b, a], strict=True):
        assert await storage.add_mask_vote(summer, mask) is None

    best = await storage.best_masks(limit=2)
    assert [vote.votes for vote in best] == [2, 2]
    assert {vote.mask for vote in best} == {a, b}


async def test_best_masks_limit_must_be_positive(storage: Storage) -> None:
    with pytest.raises(ValueError, match="limit"):
        await storage.best_masks(limit=0)


async def test_large_mask_round_trips(storage: Storage) -> None:
    summers = await add_summers(storage, 2)
    mask = os.urandom(1_500_000)
    for summer in summers:
        assert await storage.add_mask_vote(summer, mask) is None
    assert await storage.best_masks() == [MaskVote(mask, 2)]


# -- journal and checkpoint -----------------------------------------------------------------------


async def test_checkpoints_keep_the_journal_invariant(storage: Storage) -> None:
    [summer] = await add_summers(storage, 1)
    entries = [f"update {i}".encode() for i in range(9)]
    accepted = 0

    async def accept_next(count: int) -> None:
        nonlocal accepted
        for entry in entries[accepted : accepted + count]:
            await accept(storage, [summer], entry)
        accepted += count

    async def check_invariant() -> None:
        checkpoint = await storage.load_checkpoint()
        covered = checkpoint.count if checkpoint is not None else 0
        journal = await storage.journal()
        assert covered + len(journal) == accepted == await storage.update_count()
        assert journal == entries[covered:accepted]

    assert await storage.load_checkpoint() is None
    await accept_next(3)
    await check_invariant()

    await storage.save_checkpoint(Checkpoint(round_id=7, aggregate=b"agg of 2", count=2))
    assert await storage.load_checkpoint() == Checkpoint(7, b"agg of 2", 2)
    await check_invariant()

    await accept_next(4)
    await check_invariant()
    await storage.save_checkpoint(Checkpoint(round_id=7, aggregate=b"\x00agg of 6", count=6))
    await check_invariant()

    # a checkpoint covering nothing new is allowed and replaces the aggregate
    await storage.save_checkpoint(Checkpoint(round_id=7, aggregate=b"agg of 6 again", count=6))
    await check_invariant()

    await accept_next(2)
    await storage.save_checkpoint(Checkpoint(round_id=7, aggregate=b"agg of 9", count=9))
    await check_invariant()
    assert await storage.journal() == []
    assert await storage.load_checkpoint() == Checkpoint(7, b"agg of 9", 9)


@pytest.mark.parametrize("count", [1, 5])
async def test_inconsistent_checkpoint_is_refused_and_changes_nothing(
    storage: Storage, count: int
) -> None:
    [summer] = await add_summers(storage, 1)
    for i in range(4):
        await accept(storage, [summer], bytes([i]))
    await storage.save_checkpoint(Checkpoint(round_id=1, aggregate=b"two", count=2))

    # count 1 goes backwards; count 5 covers more than the 4 accepted updates
    with pytest.raises(StorageError):
        await storage.save_checkpoint(Checkpoint(round_id=1, aggregate=b"bad", count=count))
    assert await storage.load_checkpoint() == Checkpoint(1, b"two", 2)
    assert await storage.journal() == [b"\x02", b"\x03"]


# -- deleting a round -----------------------------------------------------------------------------


async def test_delete_round_clears_every_round_dictionary(storage: Storage) -> None:
    summers = await add_summers(storage, 3)
    updater = await accept(storage, summers, b"entry one")
    await accept(storage, summers, b"entry two")
    await storage.save_checkpoint(Checkpoint(round_id=3, aggregate=b"agg", count=1))
    assert await storage.add_mask_vote(summers[0], b"mask") is None
    await storage.save_state(b"state")
    await storage.set_latest_model_id("2_" + "00" * 32)

    await storage.delete_round()

    assert await storage.sum_dict() == {}
    for summer in summers:
        assert await storage.seed_dict_column(summer) == {}
    assert await storage.update_count() == 0
    assert await storage.journal() == []
    assert await storage.load_checkpoint() is None
    assert await storage.distinct_masks() == 0
    assert await storage.best_masks() == []
    # what outlives a round
    assert await storage.load_state() == b"state"
    assert await storage.latest_model_id() == "2_" + "00" * 32

    # a new round starts from scratch: the same keys may take part again
    assert await storage.add_summer(summers[0], new_pk()) is True
    assert await storage.add_update(updater, {summers[0]: new_seed()}, b"again") is None
    assert await storage.add_mask_vote(summers[0], b"mask") is None
    assert await storage.best_masks() == [MaskVote(b"mask", 1)]


async def test_delete_round_on_empty_storage(storage: Storage) -> None:
    await storage.delete_round()
    assert await storage.sum_dict() == {}


# -- concurrency ----------------------------------------------------------------------------------


async def test_concurrent_updates_from_one_updater_accept_exactly_one(storage: Storage) -> None:
    summers = await add_summers(storage, 4)
    updater = new_pk()
    results: list[UpdateRejection | None] = []

    async def submit(i: int) -> None:
        seeds = {s: new_seed() for s in summers}
        results.append(await storage.add_update(updater, seeds, f"attempt {i}".encode()))

    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(submit, i)

    assert results.count(None) == 1
    assert results.count(UpdateRejection.ALREADY_SUBMITTED) == 49
    assert await storage.update_count() == 1
    assert len(await storage.journal()) == 1
    columns = [await storage.seed_dict_column(s) for s in summers]
    assert all(list(column) == [updater] for column in columns)


async def test_concurrent_updates_from_many_updaters_all_count(storage: Storage) -> None:
    summers = await add_summers(storage, 2)
    updaters = [new_pk() for _ in range(50)]
    results: list[UpdateRejection | None] = []

    async def submit(updater: bytes) -> None:
        seeds = {s: new_seed() for s in summers}
        results.append(await storage.add_update(updater, seeds, updater))

    async with anyio.create_task_group() as tg:
        for updater in updaters:
            tg.start_soon(submit, updater)

    assert results == [None] * 50
    assert await storage.update_count() == 50
    assert sorted(await storage.journal()) == sorted(updaters)
    assert set(await storage.seed_dict_column(summers[0])) == set(updaters)


async def test_concurrent_summer_and_votes(storage: Storage) -> None:
    summer = new_pk()
    added: list[bool] = []
    votes: list[VoteRejection | None] = []

    async def add() -> None:
        added.append(await storage.add_summer(summer, new_pk()))

    async def vote(i: int) -> None:
        votes.append(await storage.add_mask_vote(summer, bytes([i])))

    async with anyio.create_task_group() as tg:
        for _ in range(30):
            tg.start_soon(add)
    async with anyio.create_task_group() as tg:
        for i in range(30):
            tg.start_soon(vote, i)

    assert added.count(True) == 1
    assert votes.count(None) == 1
    assert await storage.distinct_masks() == 1
    [best] = await storage.best_masks()
    assert best.votes == 1
