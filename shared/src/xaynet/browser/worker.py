"""What ``web_participant/worker.mjs`` calls: two entry points with JSON strings in and out.

Keeping the surface between JavaScript and Python to strings avoids proxy lifetimes: the worker
calls :func:`start` once, then :func:`command` for every message from the page; reports go to
the page through the ``post`` function given to :func:`start`, one JSON string each.

Commands (``args`` is a JSON object):

* ``add`` ``{"count": n}`` -- start ``n`` devices; answers ``{"numbers": [...]}``;
* ``remove`` ``{"number": k}`` (or none: the newest) -- stop a device;
* ``status`` -- every device, every global model seen and the fleet's timings;
* ``local_models`` ``{"round_id": r}`` -- the local models made for round ``r`` (tests);
* ``stop`` -- stop every device;
* ``join`` ``{"max_weight": w, "model_length": d}`` -- start a device whose local models come
  from the page (:mod:`xaynet.browser.page`): it reports ``need_model`` requests, which the
  page answers with ``model`` ``{"request": i, "model": [...], "weight": w}`` or ``decline``
  ``{"request": i}``; answers ``{"number": k}``;
* ``bench`` ``{"length": d, "repeat": n, "tasks": [...]}`` -- time a participant's tasks at
  model length ``d`` in this worker (:mod:`xaynet.browser.bench`); answers the timings.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from typing import Any

from xaynet.browser import digits
from xaynet.browser.fleet import DeviceFleet
from xaynet.browser.page import PageModels
from xaynet.errors import LocalProtocolError

__all__ = ["start", "command", "MAX_DEVICES"]

#: A tab runs at most this many devices (each trains and masks on the worker's one thread).
MAX_DEVICES = 32

_fleet: DeviceFleet | None = None
_timings: dict[str, list[float]] = {}


def _record(post: Callable[[str], object]) -> Callable[[dict[str, Any]], None]:
    def report(data: dict[str, Any]) -> None:
        if data.get("type") == "timing":
            # kept for ``status``; the page has no use for one message per step
            samples = _timings.setdefault(data["task"], [])
            samples.append(data["seconds"])
            del samples[:-200]
            return
        post(json.dumps(data))

    return report


async def start(post: Callable[[str], object], dataset_json: str, options_json: str) -> str:
    """Parse the data set (``""``: none, the page supplies the models) and create the fleet (no
    device yet); answers the data set's size."""
    global _fleet  # noqa: PLW0603 - one fleet per worker
    from xaynet.browser.fetch import FetchTransport  # Pyodide only

    if _fleet is not None:
        raise LocalProtocolError("the fleet is started already")
    options = json.loads(options_json)
    dataset = digits.parse_dataset(json.loads(dataset_json)) if dataset_json else None
    transport = FetchTransport(
        str(options.get("url", "")), timeout=float(options.get("timeout", 30))
    )
    seed = options.get("seed")
    _fleet = DeviceFleet(
        transport,
        dataset,
        _record(post),
        random_bytes=os.urandom,
        rng=random.Random(seed),
    )
    if dataset is None:
        return json.dumps({"train": None, "test": None})
    return json.dumps({"train": len(dataset.y_train), "test": len(dataset.y_test)})


async def command(name: str, args_json: str) -> str:
    """Run one command from the page (see the module docstring); answers JSON."""
    fleet = _fleet
    if fleet is None:
        raise LocalProtocolError("start() the fleet first")
    args = json.loads(args_json or "{}")
    result: Any
    if name == "add":
        count = int(args.get("count", 1))
        room = MAX_DEVICES - len(fleet.numbers)
        if count < 1 or count > room:
            raise LocalProtocolError(f"can add 1 to {room} devices, not {count}")
        result = {"numbers": [fleet.add_device() for _ in range(count)]}
    elif name == "remove":
        numbers = fleet.numbers
        number = int(args.get("number", numbers[-1] if numbers else -1))
        result = {"removed": await fleet.remove_device(number)}
    elif name == "status":
        result = {
            "devices": fleet.statuses(),
            "global_models": fleet.global_models(),
            "timings": {task: list(samples) for task, samples in _timings.items()},
        }
    elif name == "local_models":
        result = {"models": fleet.local_models(int(args["round_id"]))}
    elif name == "stop":
        for number in fleet.numbers:
            await fleet.remove_device(number)
        result = {"devices": 0}
    elif name == "join":
        result = {"number": _join(fleet, args)}
    elif name in ("model", "decline"):
        page = fleet.provider_of(int(args.get("number", -1)))
        if not isinstance(page, PageModels):
            raise LocalProtocolError("no device of this number takes models from the page")
        if name == "model":
            page.provide(int(args["request"]), args.get("model"), args.get("weight"))
        else:
            page.decline(int(args["request"]))
        result = {}
    elif name == "bench":
        from xaynet.browser import bench  # only the benchmark needs it

        result = await bench.run_command(args, dataset=fleet.dataset, poster=fleet.shared.transport)
    else:
        raise LocalProtocolError(f"unknown command {name!r}")
    return json.dumps(result)


def _join(fleet: DeviceFleet, args: dict[str, Any]) -> int:
    max_weight, length = args.get("max_weight"), args.get("model_length")
    if isinstance(max_weight, bool) or not isinstance(max_weight, int | float) or max_weight <= 0:
        raise LocalProtocolError("join: max_weight must be a number > 0")
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise LocalProtocolError("join: model_length must be a positive integer")
    if len(fleet.numbers) >= MAX_DEVICES:
        raise LocalProtocolError(f"a tab runs at most {MAX_DEVICES} devices")

    def provider(device: Any) -> PageModels:
        number = device.status.number
        return PageModels(
            lambda report: fleet.report({**report, "number": number}),
            device.keep_local_model,
            max_weight=max_weight,
            model_length=length,
        )

    return fleet.add_device(provider, max_weight=max_weight, model_length=length)
