"""The emulator's stand-in model gives an opaque product (review 4, item 8): a solid core, a soft rim only at
the edge, and so no QA flag, on the bundled samples and on plain product photos. The mug, on a backdrop
lighter at the top than on its tabletop, used to come out with over half of its visible matte below 0.95
(`soft`), which the README's first picture and the mug template showed. The QA tests keep their own
deliberately bad samples (tests/test_qa_report.py)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from support import product_photo

from runflow_api.emulator import model
from runflow_api.pictures import qa

SAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _jpeg(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=92)
    return out.getvalue()


INPUTS = {
    "mug.jpg": lambda: (SAMPLES / "mug.jpg").read_bytes(),
    "sneaker.jpg": lambda: (SAMPLES / "sneaker.jpg").read_bytes(),
    **{f"product photo {seed}": (lambda seed=seed: _jpeg(product_photo(seed, (300, 400)))) for seed in (1, 4, 7)},
}


@pytest.mark.parametrize("name", INPUTS)
def test_the_product_comes_out_opaque_and_unflagged(name: str) -> None:
    result = Image.open(io.BytesIO(model.isolate(INPUTS[name](), (1024, 1024))))
    assert qa.image_flags(result) == []
    alpha = result.getchannel("A")
    product = alpha.point(lambda value: 255 if value >= 128 else 0)
    core = np.asarray(product.filter(ImageFilter.MinFilter(9))) > 0  # 4 px in from the rim at least
    matte = np.asarray(alpha) / 255.0
    assert core.sum() > 0.05 * core.size, "a product fills the canvas, not a speck"
    assert (matte[core] >= 0.95).mean() >= 0.98, "a solid core: the product itself is not see-through"
    visible = matte > 0.05
    assert ((matte < 0.95) & visible).sum() / visible.sum() < 0.25, "the soft part is the rim, not the product"
