"""Write web_participant/data/digits.json: the demo's data set, from scikit-learn's digits.

The split is the one of examples/digits_numpy (stratified 75/25, fixed seed), so the browser's
accuracy is comparable with the examples'. Each image is 64 characters "0".."g" (intensities
0..16); xaynet.browser.digits reads it. Run from the repository root:

    .venv/bin/python tools/make_digits_json.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "web_participant" / "data" / "digits.json"
PIXELS = "0123456789abcdefg"


def build() -> dict[str, object]:
    sys.path.insert(0, str(ROOT / "examples" / "digits_numpy"))
    from digits import load_dataset  # the examples' loader: same split

    data = load_dataset()

    def part(x: object, y: object) -> dict[str, object]:
        rows = ["".join(PIXELS[round(v * 16)] for v in image) for image in x]  # type: ignore[attr-defined]
        return {"x": rows, "y": [int(label) for label in y]}  # type: ignore[attr-defined]

    return {
        "source": "UCI hand-written digits (from scikit-learn), split of examples/digits_numpy",
        "pixels": PIXELS,
        "train": part(data.x_train, data.y_train),
        "test": part(data.x_test, data.y_test),
    }


def main() -> None:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(build(), separators=(",", ":")) + "\n")
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({OUTPUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
