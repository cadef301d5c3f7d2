"""Marketplace presets: the shipped table, custom presets and their refusals, JPEG with an exact background
within a cap, rendering from a stored result, and the tier chosen before paying."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from runflow_api.errors import InputRejected
from runflow_api.pictures import marketplace_encode, marketplace_presets, marketplace_render, marketplace_tiers
from runflow_api.pictures.marketplace_checks import JPEG_BLOCK
from runflow_api.pictures.marketplace_presets import Preset, parse_custom
from runflow_api.pictures.result_types import IsolationResult

ISSUE_TABLE = {  # name: (width, height, fill target, fill range, cap in bytes), from issue 35
    "amazon": (2000, 2000, 0.87, (0.85, 0.90), 10_000_000),
    "walmart": (2200, 2200, 0.85, (0.84, 0.86), 5_000_000),
    "shopify": (2048, 2048, 0.85, (0.84, 0.86), 20_000_000),
    "ebay": (1600, 1600, 0.85, (0.84, 0.86), 12_000_000),
    "google": (1500, 1500, 0.85, (0.84, 0.86), 16_000_000),
    "instagram": (1080, 1080, 0.85, (0.84, 0.86), 8_000_000),
    "instagram-portrait": (1080, 1350, 0.85, (0.84, 0.86), 8_000_000),
    "pinterest": (1000, 1500, 0.85, (0.84, 0.86), 20_000_000),
    "zalando": (1801, 2600, 0.85, (0.84, 0.86), 20_000_000),
    "aboutyou": (1500, 2000, 0.85, (0.84, 0.86), 2_000_000),
}


def stored_result(size: tuple[int, int] = (1200, 900), box: tuple[int, int] = (700, 500),
                  seed: int = 0) -> np.ndarray:
    """An RGBA result like the service's: a textured, high-contrast product (dark and saturated next to a
    light background, the worst case for JPEG ringing) with a soft 3 px rim, centred, transparent around."""
    width, height = size
    rng = np.random.default_rng(seed)
    rgba = np.zeros((height, width, 4), np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    inside = ((xx - width / 2) / (box[0] / 2)) ** 2 + ((yy - height / 2) / (box[1] / 2)) ** 2
    alpha = np.clip((1.0 - inside) * box[1] / 6, 0, 1)  # ~3 px soft rim
    rgba[..., 3] = np.round(alpha * 255).astype(np.uint8)
    texture = rng.integers(0, 60, (height, width, 1))
    stripes = np.where(((xx // 40) % 2 == 0)[..., None], [20, 30, 160], [200, 40, 20])
    rgba[..., 0:3] = stripes + texture
    rgba[..., 0:3][rgba[..., 3] == 0] = [0, 255, 0]  # the old background's colour under alpha 0
    return rgba


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_the_shipped_presets_are_the_issues_table_with_their_sources() -> None:
    presets = marketplace_presets.builtin()
    assert list(presets) == list(ISSUE_TABLE)
    for name, (width, height, fill, (low, high), cap) in ISSUE_TABLE.items():
        preset = presets[name]
        assert (preset.width, preset.height, preset.fill, preset.cap) == (width, height, fill, cap), name
        assert (preset.fill_min, preset.fill_max) == pytest.approx((low, high)), name
        assert preset.background == (255, 255, 255) and preset.format == "jpeg" and preset.extension == ".jpg"
        assert preset.source.count("https://") == 1 and preset.checked == "2026-12-06", name


def test_a_custom_preset_string_sets_every_part() -> None:
    preset = parse_custom("1200x1500,fill=0.8,bg=#f5f5f5,jpeg,cap=3MB")
    assert (preset.name, preset.width, preset.height) == ("1200x1500", 1200, 1500)
    assert (preset.fill, preset.fill_min, preset.fill_max) == (0.8, 0.79, 0.81)
    assert (preset.background, preset.format, preset.cap) == ((245, 245, 245), "jpeg", 3_000_000)
    other = parse_custom(" name=Shop-Main , 800X800, png, fill=70%, cap=500KB, bg=black")
    assert (other.name, other.width, other.format, other.fill, other.cap, other.background) == (
        "shop-main", 800, "png", 0.7, 500_000, (0, 0, 0))
    ranged = parse_custom("1000x1000,fill=0.85-0.9")
    assert (ranged.fill_min, ranged.fill, ranged.fill_max) == (0.85, 0.875, 0.9)
    defaults = parse_custom("1000x1000")
    assert (defaults.fill, defaults.background, defaults.format, defaults.cap) == (0.85, (255, 255, 255), "jpeg", None)


@pytest.mark.parametrize(("spec", "says"), [
    ("", "empty"),
    ("fill=0.8,jpeg", "has no size"),
    ("1200x1500,gif", "cannot read 'gif'"),
    ("1200x1500,fill=lots", "not a share"),
    ("1200x1500,fill=0.99", "within 0.05-0.98"),
    ("1200x1500,fill=0.04", "within 0.05-0.98"),
    ("1200x1500,cap=3XB", "not a size like 3MB"),
    ("1200x1500,cap=20", "cannot hold an image"),
    ("1200x1500,bg=transparent", "needs a background colour"),
    ("1200x1500,bg=#zzzzzz", "not a colour I can read"),
    ("10x1500", "outside 16..10000"),
    ("1200x1500,name=../up", "must be 1-64 lowercase letters"),
    ("1200x1500,bg=#ff0000", "#FE0000 is the nearest"),
])
def test_a_custom_preset_that_cannot_work_is_refused_naming_it_and_what_to_do(spec: str, says: str) -> None:
    with pytest.raises(InputRejected) as refused:
        parse_custom(spec, where="--preset")
    assert says in str(refused.value)
    assert "--preset" in str(refused.value)


def test_a_saturated_background_is_fine_in_a_lossless_format() -> None:
    assert parse_custom("1200x1500,bg=#ff0000,png").background == (255, 0, 0)


def test_a_preset_file_reads_one_per_line_and_names_the_bad_line(tmp_path: Path) -> None:
    good = tmp_path / "shops.txt"
    good.write_text("# my shops\nname=shop-a,1200x1500,fill=0.8,bg=#f5f5f5\n\nname=shop-b,900x900,png  # square\n")
    read = marketplace_presets.read_file(good)
    assert [preset.name for preset in read] == ["shop-a", "shop-b"]
    assert read[0].background == (245, 245, 245), "a colour's # is no comment"
    bad = tmp_path / "bad.txt"
    bad.write_text("name=ok,1000x1000\nname=broken,1000x1000,fill=2\n")
    with pytest.raises(InputRejected, match=r"bad\.txt line 2"):
        marketplace_presets.read_file(bad)
    with pytest.raises(InputRejected, match="holds no preset"):
        (tmp_path / "empty.txt").write_text("# nothing\n")
        marketplace_presets.read_file(tmp_path / "empty.txt")
    with pytest.raises(InputRejected, match="Cannot read the preset file"):
        marketplace_presets.read_file(tmp_path / "missing.txt")


def test_presets_are_selected_by_name_or_all_and_an_unknown_name_lists_the_known() -> None:
    assert [preset.name for preset in marketplace_presets.select("all")] == list(ISSUE_TABLE)
    assert [p.name for p in marketplace_presets.select("amazon, Pinterest,amazon")] == ["amazon", "pinterest"]
    mine = parse_custom("name=amazon,1000x1000")  # a custom preset of the same name wins
    assert marketplace_presets.select("amazon", [mine])[0].width == 1000
    with pytest.raises(InputRejected, match="no preset 'amazn'.*amazon, walmart"):
        marketplace_presets.select("amazn")


def test_jpeg_tables_are_libjpegs_with_an_exact_dc_entry() -> None:
    luma, chroma = marketplace_encode.jpeg_tables(50)
    assert luma[0] == chroma[0] == 1
    assert luma[1:8] == [11, 10, 16, 24, 40, 51, 61] and chroma[1:4] == [18, 24, 47]  # quality 50: as is
    assert marketplace_encode.jpeg_tables(95)[0][1:4] == [1, 1, 2]  # scaled as libjpeg scales


def test_every_grey_survives_our_jpeg_exactly_where_the_standard_tables_shift_it() -> None:
    assert all(marketplace_encode.exact_in_jpeg((grey, grey, grey)) for grey in range(256))
    flat = Image.new("RGB", (16, 16), (245, 245, 245))
    standard = io.BytesIO()
    flat.save(standard, "JPEG", quality=70, subsampling=0)
    assert decoded(standard.getvalue())[0, 0, 0] == 246, "the failure these tables prevent"
    for quality in (marketplace_encode.JPEG_FLOOR, 70, marketplace_encode.JPEG_START):
        assert (decoded(marketplace_encode.encode_jpeg(flat, quality)) == 245).all()
    assert not marketplace_encode.exact_in_jpeg((255, 0, 0))


def noisy(size: int = 600, seed: int = 3) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def test_the_cap_lowers_the_quality_only_as_far_as_needed() -> None:
    image = noisy()
    at_start = len(marketplace_encode.encode_jpeg(image, marketplace_encode.JPEG_START))
    assert marketplace_encode.encode(image, "jpeg", at_start).quality == marketplace_encode.JPEG_START
    cap = len(marketplace_encode.encode_jpeg(image, 70)) + 1
    fitted = marketplace_encode.encode(image, "jpeg", cap)
    assert fitted.quality is not None and len(fitted.data) <= cap
    assert len(marketplace_encode.encode_jpeg(image, fitted.quality + 1)) > cap, "the highest quality that fits"
    assert fitted.data == marketplace_encode.encode_jpeg(image, fitted.quality)
    hopeless = marketplace_encode.encode(image, "jpeg", 5000)
    assert hopeless.quality == marketplace_encode.JPEG_FLOOR and len(hopeless.data) > 5000


def test_lossless_formats_are_written_as_they_are() -> None:
    image = noisy(64)
    for fmt in ("png", "webp"):
        encoded = marketplace_encode.encode(image, fmt, None)
        assert encoded.quality is None
        assert (decoded(encoded.data) == np.asarray(image)).all()


def product_box(pixels: np.ndarray, background: tuple[int, int, int]) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero((pixels != np.asarray(background, np.uint8)).any(axis=2))
    return int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1


@pytest.fixture(scope="module")
def all_ten() -> dict[str, marketplace_render.Rendering]:
    """Every shipped preset rendered from one large enough result (the product cut and cleaned once)."""
    renderings = marketplace_render.render_all(stored_result((2400, 2400), (2200, 2100)),
                                               marketplace_presets.select("all"))
    return {rendering.preset.name: rendering for rendering in renderings}


@pytest.mark.parametrize("name", list(ISSUE_TABLE))
def test_every_shipped_preset_renders_compliant_from_a_large_enough_result(
        name: str, all_ten: dict[str, marketplace_render.Rendering]) -> None:
    preset = marketplace_presets.builtin()[name]
    rendering = all_ten[name]
    assert rendering.preset == preset and rendering.flags == []
    image = Image.open(io.BytesIO(rendering.data))
    assert image.format == "JPEG" and image.size == (preset.width, preset.height)
    assert JpegImagePlugin.get_sampling(image) == 0, "4:4:4: no chroma subsampling"
    assert len(rendering.data) <= (preset.cap or 0)
    pixels = decoded(rendering.data)
    top, bottom, left, right = product_box(pixels, preset.background)
    margin = min(top, left, preset.height - bottom, preset.width - right)
    assert margin >= marketplace_render.MARGIN
    assert abs((top + bottom) - preset.height) <= 2 * JPEG_BLOCK, "centred (ringing may widen one side a block)"
    assert abs((left + right) - preset.width) <= 2 * JPEG_BLOCK
    assert preset.fill_min <= rendering.measured.fill <= preset.fill_max
    assert rendering.measured.background_off == 0


def test_the_background_is_exact_outside_the_products_blocks_and_rings_only_inside_them() -> None:
    """The honest claim, measured: every 8x8 block without product decodes to exactly the colour, at the
    lowest quality the cap search goes to, next to a dark, saturated, noisy product; the blocks the product
    reaches do ring (so the region checked is what makes the claim true, not a lucky encoder)."""
    preset = parse_custom("1000x1000,fill=0.8,bg=#f5f5f5,jpeg,cap=60KB")
    rendering = marketplace_render.render(stored_result(), preset)
    assert rendering.quality is not None and rendering.quality < marketplace_encode.JPEG_START
    assert "background" not in rendering.flags
    pixels = decoded(rendering.data).astype(int)
    mask = np.zeros(pixels.shape[:2], bool)
    placed = rendering.product
    rows, cols = placed.alpha.shape
    mask[placed.top:placed.top + rows, placed.left:placed.left + cols] = placed.alpha > 0
    cells = mask.reshape(125, 8, 125, 8).any(axis=(1, 3)).repeat(8, axis=0).repeat(8, axis=1)
    deviation = np.abs(pixels - 245).max(axis=2)
    assert deviation[~cells].max() == 0
    assert deviation[cells & ~mask].max() > 0, "ringing next to the product, inside its blocks"


def test_a_result_object_and_a_pil_image_render_like_the_array() -> None:
    rgba = stored_result()
    preset = parse_custom("600x600,png")
    from_array = marketplace_render.render(rgba, preset).data
    image = Image.fromarray(rgba, "RGBA")
    result = IsolationResult(image=image, run_id="r1", cost=Decimal("0.27"), output_url=None, cached=True,
                             aspect_ratio="4:3", resolution="1K", cache_key="k")
    assert marketplace_render.render(result, preset).data == from_array
    assert marketplace_render.render(image, preset).data == from_array


def test_clean_edges_are_the_default_and_as_returned_keeps_the_old_colour() -> None:
    preset = parse_custom("1200x900,fill=0.6,png")  # no resize: the rim's colour is compared as it is
    rgba = stored_result()
    clean = decoded(marketplace_render.render(rgba, preset).data).astype(int)
    kept = decoded(marketplace_render.render(rgba, preset, edges="as returned").data).astype(int)
    rim = (rgba[..., 3] > 0) & (rgba[..., 3] < 255)
    assert rim.any()
    assert not (clean == kept).all()
    with pytest.raises(InputRejected, match="edges must be one of"):
        marketplace_render.render(rgba, preset, edges="sharp")


def test_an_empty_result_or_a_wrong_array_is_refused() -> None:
    with pytest.raises(InputRejected, match="holds no product"):
        marketplace_render.render(np.zeros((50, 50, 4), np.uint8), parse_custom("100x100"))
    with pytest.raises(InputRejected, match="HxWx4 uint8"):
        marketplace_render.render(np.zeros((50, 50, 3), np.float32), parse_custom("100x100"))


def test_enlarged_is_flagged_only_when_the_product_is_scaled_up() -> None:
    preset = parse_custom("1000x1000,fill=0.85,png")  # the product's box becomes 850 px wide
    exact = np.zeros((1000, 1000, 4), np.uint8)
    exact[100:500, 75:925] = 255  # an 850 x 400 box: placed at scale 1
    assert marketplace_render.render(exact, preset).flags == []
    smaller = np.zeros((1000, 1000, 4), np.uint8)
    smaller[100:500, 75:924] = 255  # 849 px wide: enlarged
    assert marketplace_render.render(smaller, preset).flags == ["enlarged"]


def test_a_product_cut_at_the_results_frame_is_flagged_cut_off() -> None:
    preset = parse_custom("800x800,png")
    rgba = np.zeros((600, 600, 4), np.uint8)
    rgba[0:300, 100:500] = 255  # on the top border line: cut by the service
    assert "cut_off" in marketplace_render.render(rgba, preset).flags
    rgba = np.zeros((600, 600, 4), np.uint8)
    rgba[1:300, 100:500] = 255
    assert "cut_off" not in marketplace_render.render(rgba, preset).flags


def test_render_all_cuts_the_product_once_and_matches_rendering_each_alone() -> None:
    rgba = stored_result((2400, 1800), (1800, 1300))
    presets = marketplace_presets.select("instagram,instagram-portrait,pinterest")
    together = marketplace_render.render_all(rgba, presets)
    assert [rendering.preset.name for rendering in together] == ["instagram", "instagram-portrait", "pinterest"]
    assert all(rendering.flags == [] for rendering in together)
    alone = marketplace_render.render(rgba, presets[2])
    assert alone.placement == together[2].placement and alone.flags == together[2].flags
    # the two Instagram canvases place the product at the same size: one resize for both
    assert together[0].placement.width == together[1].placement.width


def square(width: int, height: int, fill: float = 0.85) -> Preset:
    return parse_custom(f"{width}x{height},fill={fill}")


def test_the_tier_is_the_smallest_that_covers_every_preset() -> None:
    choose = marketplace_tiers.choose_tier
    assert choose([square(800, 800)], "1:1").resolution == "1K"  # 0.85 x 1024 = 870 >= 0.85 x 800
    assert choose([square(1024, 1024)], "1:1").resolution == "1K"  # exactly enough
    assert choose([square(1025, 1025)], "1:1").resolution == "2K"  # one px more
    presets = marketplace_presets.select("amazon,instagram-portrait,pinterest")
    assert choose(presets, "1:1") == marketplace_tiers.TierChoice("2K", (2048, 2048), ())
    assert choose(marketplace_presets.select("all"), "1:1").resolution == "4K"  # walmart's 2200 px
    wide = choose(presets, "auto", input_size=(3000, 2000))  # 3:2: 2K is 2048 x 1365, too low for amazon
    assert wide == marketplace_tiers.TierChoice("4K", (4096, 2731), ())


def test_no_tier_or_a_small_photo_predicts_enlarged() -> None:
    huge = square(5000, 5000)
    choice = marketplace_tiers.choose_tier([huge, square(800, 800)], "1:1")
    assert (choice.resolution, choice.enlarged) == ("4K", (huge.name,))
    small_photo = marketplace_tiers.choose_tier([square(1000, 1000)], "1:1", input_size=(849, 849))
    assert small_photo.enlarged == ("1000x1000",)
    enough = marketplace_tiers.choose_tier([square(1000, 1000)], "1:1", input_size=(850, 300))
    assert enough.enlarged == (), "a product spanning the photo's width has the pixels"
    with pytest.raises(InputRejected, match="input_size"):
        marketplace_tiers.choose_tier([huge], "auto")
    with pytest.raises(InputRejected, match="at least one preset"):
        marketplace_tiers.choose_tier([], "1:1")


def test_the_library_lists_and_renders_presets_by_name_or_string() -> None:
    import runflow_api

    assert [preset.name for preset in runflow_api.list_presets()] == list(ISSUE_TABLE)
    rgba = stored_result()
    by_name = runflow_api.render_preset(rgba, "Instagram")
    assert by_name.preset.name == "instagram" and by_name.extension == ".jpg"
    custom = runflow_api.render_preset(rgba, "name=shop,640x800,fill=0.7,png")
    assert Image.open(io.BytesIO(custom.data)).size == (640, 800) and custom.extension == ".png"
    both = runflow_api.render_presets(rgba, ["pinterest", custom.preset])
    assert [rendering.preset.name for rendering in both] == ["pinterest", "shop"]
    assert both[1].report()["preset"] == "shop" and both[1].report()["flags"] == []
    with pytest.raises(InputRejected, match="no preset 'amazn'"):
        runflow_api.render_preset(rgba, "amazn")


def test_the_formats_command_prints_the_table(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from runflow_api.catalogue import cli

    assert cli.main(["formats"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "canvas", "background", "fill", "format", "cap", "source"]
    assert lines[1].split()[:6] == ["amazon", "2000x2000", "#FFFFFF", "85%-90%", "JPEG", "10"]
    assert "sellercentral.amazon.com" in lines[1] and "checked 2026-12-06" in lines[1]
    assert [line.split()[0] for line in lines[1:]] == list(ISSUE_TABLE)
    mine = tmp_path / "mine.txt"
    mine.write_text("name=shop,1200x1500,fill=0.8,bg=#f5f5f5,jpeg,cap=3MB\n")
    assert cli.main(["formats", "--preset-file", str(mine)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].split()[:6] == ["shop", "1200x1500", "#F5F5F5", "80%", "JPEG", "3"]
    mine.write_text("name=shop,1200x1500,fill=3\n")
    assert cli.main(["formats", "--preset-file", str(mine)]) == 2
    assert "mine.txt line 1" in capsys.readouterr().err


def test_a_preset_one_pixel_larger_shares_a_resize_and_keeps_its_fill() -> None:
    """Amazon places the product at 0.87 x 2000 = 1740 px and Shopify at 0.85 x 2048 = 1740.8 -> 1741 px:
    rendered together, Shopify takes the 1740 px resize (never a larger one), still centred within half a
    pixel and well inside its fill range; alone, it is scaled to its own 1741 px."""
    rgba = stored_result((2600, 1400), (2400, 1000))
    amazon, shopify = marketplace_presets.select("amazon,shopify")
    together = marketplace_render.render_all(rgba, [amazon, shopify])
    alone = marketplace_render.render(rgba, shopify)
    assert (alone.placement.width, together[0].placement.width) == (1741, 1740)
    assert together[1].placement.width == 1740 and together[1].flags == [] == alone.flags
    assert abs(together[1].report()["fill"] - alone.report()["fill"]) < 0.001
    placed = together[1].placement
    assert abs((placed.left + placed.width / 2) - shopify.width / 2) <= 0.5


def test_a_small_preset_is_scaled_from_a_larger_rendering_with_no_visible_difference() -> None:
    """Pinterest (850 px) next to Walmart (1870 px): scaled from the larger rendering, not the product;
    on this noisy texture (the worst case for any resampling) it differs from the file scaled straight
    from the product by less than JPEG's own encoding changes that file."""
    rgba = stored_result((2600, 1400), (2400, 1000))
    walmart, pinterest = marketplace_presets.select("walmart,pinterest")
    cascaded = marketplace_render.render_all(rgba, [walmart, pinterest])[1]
    direct = marketplace_render.render_all(rgba, [pinterest])[0]
    assert cascaded.placement == direct.placement and cascaded.flags == direct.flags == []
    product = cascaded.product.alpha == 255
    top, left = cascaded.placement.top, cascaded.placement.left
    window = (slice(top, top + product.shape[0]), slice(left, left + product.shape[1]))
    error = decoded(cascaded.data)[window][product].astype(float) - decoded(direct.data)[window][product]
    _, canvas = marketplace_render.render_with_canvas(marketplace_render.Product.of(rgba, presets=[pinterest]),
                                                      pinterest)
    encoding = np.asarray(canvas)[window][product].astype(float) - decoded(direct.data)[window][product]
    assert 0 < np.mean(error ** 2) < np.mean(encoding ** 2), (np.mean(error ** 2), np.mean(encoding ** 2))
