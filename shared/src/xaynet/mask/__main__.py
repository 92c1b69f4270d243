"""``python -m xaynet.mask info``: the constants of a masking configuration, for sizing.

Example::

    python -m xaynet.mask info --group Prime --data F32 --bound B0 --model M3 --length 100000

prints JSON with the group order, bytes per element, the maximum number of models and the
shifts, and with ``--length`` the size of a masked model and of the messages that carry it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from xaynet.errors import ConfigError
from xaynet.mask.config import MaskConfig
from xaynet.mask.sampling import acceptance_rate

# Header 136 + sealed-box overhead 48; signatures and seed-dict entry sizes of the wire format.
_HEADER = 136
_SEAL = 48
_SIGNATURE = 64
_SEED_DICT_ENTRY = 32 + 80


def info(config: MaskConfig, length: int | None, summers: int) -> dict[str, object]:
    """The figures ``info`` prints."""
    width = config.bytes_per_element
    result: dict[str, object] = {
        "config": config.names(),
        "order": config.order,
        "order_bits": config.order.bit_length(),
        "bytes_per_element": width,
        "max_models": config.max_models,
        "add_shift": config.add_shift,
        "exp_shift": config.exp_shift,
        "resolution": f"1e-{len(str(config.exp_shift)) - 1}",
        "numpy_path": config.numpy_compatible,
        "sampling_acceptance": round(acceptance_rate(config), 6),
    }
    if length is not None:
        mask_object = 8 + length * width + 4 + width
        update = _HEADER + 2 * _SIGNATURE + mask_object + 4 + summers * _SEED_DICT_ENTRY + _SEAL
        sum2 = _HEADER + _SIGNATURE + mask_object + _SEAL
        result.update(
            {
                "model_length": length,
                "masked_model_bytes": mask_object,
                "raw_float32_bytes": 4 * length,
                "update_message_bytes": update,
                "sum2_message_bytes": sum2,
                "summers": summers,
            }
        )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m xaynet.mask", description="Inspect masking configurations."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("info", help="print the derived constants of a config as JSON")
    show.add_argument("--group", default="Power2", help="Integer, Prime or Power2")
    show.add_argument("--data", default="F32", help="F32, F64, I32 or I64")
    show.add_argument("--bound", default="B0", help="B0, B2, B4, B6 or Bmax")
    show.add_argument("--model", default="M3", help="M3, M6, M9 or M12")
    show.add_argument("--length", type=int, help="model length: also print message sizes")
    show.add_argument("--summers", type=int, default=1, help="summers per round (with --length)")
    args = parser.parse_args(argv)
    try:
        config = MaskConfig.from_names(args.group, args.data, args.bound, args.model)
    except ConfigError as exc:
        parser.error(str(exc))
    if args.length is not None and args.length < 1:
        parser.error("--length must be at least 1")
    if args.summers < 1:
        parser.error("--summers must be at least 1")
    json.dump(info(config, args.length, args.summers), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
