"""Masking throughput: mask generation, aggregation from wire bytes, unmasking.

Run natively (numpy and pure paths)::

    .venv/bin/python benchmarks/bench_mask.py

or the pure path under Pyodide in Node (``make bench-pyodide``). Every figure is the best of a few
repetitions, in elements per second, on one core. Each table also gives a reference measured in
the same process, so figures from noisy machines stay comparable:

* mask generation: reading the raw keystream bytes the elements are drawn from;
* aggregation: summing the same number of already decoded uint64 vectors (numpy) or adding
  pre-packed big integers (pure): the arithmetic without the decoding and range checks.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

try:
    import xaynet  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "shared" / "src"))

from xaynet import crypto
from xaynet.mask import Aggregation, MaskConfig, MaskConfigPair, MaskObject, derive_mask, mask_model
from xaynet.mask.masking import numpy_available

GROUPS = ("Power2", "Prime")


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bench(group: str, path: str, length: int, models: int, repeat: int) -> dict[str, float]:
    config = MaskConfigPair.uniform(MaskConfig.from_names(group, "F32", "B0", "M3"))
    width = config.vect.bytes_per_element
    seeds = [bytes([i % 256, i // 256]) * 16 for i in range(models)]
    result: dict[str, float] = {}

    # Warm up at full size: the first passes of a process pay for imports, page faults and the
    # allocator's growth, which would otherwise land on whichever figure is measured first.
    for _ in range(2):
        crypto.prg(seeds[0], 2 * length * width)
        derive_mask(seeds[0], config=config, length=length, path=path)
    keystream_time = best_of(repeat + 2, lambda: crypto.prg(seeds[0], length * width))
    result["keystream_elements_per_s"] = length / keystream_time
    gen_time = best_of(
        repeat + 2, lambda: derive_mask(seeds[0], config=config, length=length, path=path)
    )
    result["mask_generation_per_s"] = length / gen_time

    model = [((i * 7919) % 2001 - 1000) / 1000.0 for i in range(length)]
    if path == "numpy":
        import numpy as np

        model_in: object = np.asarray(model, dtype=np.float32)
    else:
        model_in = model
    mask_time = best_of(
        max(1, repeat // 2),
        lambda: mask_model(seeds[0], model_in, config=config, scalar=1, path=path),
    )
    result["masking_per_s"] = length / mask_time

    # Distinct wire messages would cost minutes to prepare in the pure path; one masked model
    # re-decoded from its wire bytes 100 times measures the same work.
    wire = mask_model(seeds[1], model_in, config=config, scalar=1, path=path).to_bytes()

    def aggregate() -> Aggregation:
        aggregation = Aggregation(config, length, path=path)
        for _ in range(models):
            aggregation.add(MaskObject.from_bytes(wire))
        return aggregation

    agg_time = best_of(max(1, repeat // 2), aggregate)
    result["aggregation_per_s"] = models * length / agg_time
    result["aggregation_reference_per_s"] = models * length / _reference_sum(path, wire, models)

    aggregation = aggregate()
    mask = Aggregation(config, length, path=path)
    for _ in range(models):
        mask.add(derive_mask(seeds[1], config=config, length=length, path=path))
    mask_object = mask.result()
    unmask_time = best_of(repeat, lambda: aggregation.unmask(mask_object))
    result["unmasking_per_s"] = length / unmask_time
    return result


def _reference_sum(path: str, wire: bytes, models: int) -> float:
    obj = MaskObject.from_bytes(wire)
    if path == "numpy":
        import numpy as np

        from xaynet.mask import _numpy

        values = _numpy.decode(obj.vect.data, obj.vect.config.bytes_per_element)
        acc = np.zeros_like(values)

        def run() -> None:
            for _ in range(models):
                acc.__iadd__(values)

        return best_of(2, run)
    from xaynet.mask import _lanes

    width = obj.vect.config.bytes_per_element
    packed = int.from_bytes(_lanes.widen(obj.vect.data, width), "little")

    def run_pure() -> None:
        total = 0
        for _ in range(models):
            total += packed

    return best_of(2, run_pure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=1_000_000, help="model length d")
    parser.add_argument("--models", type=int, default=100, help="masked models to aggregate")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions, best is kept")
    parser.add_argument("--paths", default=None, help="comma-separated: numpy,pure")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    paths = (
        args.paths.split(",")
        if args.paths
        else (["numpy", "pure"] if numpy_available() else ["pure"])
    )
    runtime = (
        f"Pyodide {sys.version.split()[0]} (wasm)"
        if sys.platform == "emscripten"
        else f"CPython {platform.python_version()}"
    )
    rows = []
    for path in paths:
        for group in GROUPS:
            figures = bench(group, path, args.length, args.models, args.repeat)
            rows.append({"runtime": runtime, "path": path, "group": group, **figures})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{runtime}, d = {args.length:,}, {args.models} models, F32/B0/M3, best of {args.repeat}")
    header = (
        f"{'path':6} {'group':7} {'mask gen':>10} {'keystream':>10} {'masking':>10} "
        f"{'aggregate':>10} {'agg ref':>10} {'unmask':>10}   (M elements/s)"
    )
    print(header)
    for row in rows:
        print(
            f"{row['path']:6} {row['group']:7} "
            + " ".join(
                f"{row[key] / 1e6:10.1f}"
                for key in (
                    "mask_generation_per_s",
                    "keystream_elements_per_s",
                    "masking_per_s",
                    "aggregation_per_s",
                    "aggregation_reference_per_s",
                    "unmasking_per_s",
                )
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
