"""The masking arithmetic of a PET round in a dozen lines: mask, aggregate, unmask.

Each updater masks its model with a fresh secret seed; the coordinator only ever adds masked
models. A summer who learns the seeds (sealed to it) rebuilds the masks and adds them; the
coordinator subtracts that sum and obtains the weighted mean, never one model.

    python examples/masking_basics.py
"""

from __future__ import annotations

import os

from xaynet.mask import DEFAULT_MASK_CONFIG, Aggregation, derive_mask, mask_model

config, length = DEFAULT_MASK_CONFIG, 4
local_models = [([0.5, -0.25, 1.0, 0.0], 1.0), ([0.1, 0.2, 0.3, 0.4], 0.5)]  # (model, weight)

masked_sum = Aggregation(config, length)  # what the coordinator holds
mask_sum = Aggregation(config, length)  # what a summer rebuilds from the seeds
for model, weight in local_models:
    seed = os.urandom(32)  # the updater's secret
    masked = mask_model(seed, model, config=config, scalar=weight)
    print("masked model sent:", masked.vect.data[:12].hex(), "...")
    masked_sum.add(masked)
    mask_sum.add(derive_mask(seed, config=config, length=length))

global_model = masked_sum.unmask(mask_sum.result())
print("global model:     ", [round(v, 6) for v in global_model])
total = sum(weight for _, weight in local_models)
expected = [sum(m[i] * w for m, w in local_models) / total for i in range(length)]
print("weighted mean:    ", [round(v, 6) for v in expected])
assert all(abs(a - b) < 1e-6 for a, b in zip(global_model, expected, strict=True))
