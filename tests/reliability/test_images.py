"""One image file gives the same pixels in every domain: vision, vlm (what the CLIP tower sees) and diffusion.

Each case is a file as users have them (16-bit PNG, EXIF-rotated JPEG, transparency, palette, CMYK, grayscale),
loaded through each domain's public path and compared to the others and to the pixels it should give.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import open_clip
import pytest
import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
from PIL import Image

import diffusion
import vision
from vlm import FewShotCLIP

SIDE = 16
WHITE, RED, BLUE = (255, 255, 255), (255, 0, 0), (0, 0, 255)


def _halves(left, right) -> np.ndarray:
    """An RGB SIDE×SIDE array: colour `left` in the left half, `right` in the right half."""
    array = np.empty((SIDE, SIDE, 3), np.uint8)
    array[:, : SIDE // 2], array[:, SIDE // 2 :] = left, right
    return array


def _gradient_16bit(path):
    # Not spanning 0..65535, so that stretching min->max instead of scaling by bit depth shows
    values = np.linspace(8192, 49152, SIDE * SIDE).round().astype(np.uint16).reshape(SIDE, SIDE)
    values[0, 0] = 32768
    Image.fromarray(values).save(path)
    gray = np.round(values / 65535 * 255).astype(np.uint8)  # by bit depth: 32768 -> 128, never stretched
    assert gray[0, 0] == 128
    return np.repeat(gray[..., None], 3, axis=2)


def _rgb_48bit(path):
    """A 16-bit-per-channel RGB PNG, written by hand (PIL writes none); PIL reads it at 8 bits."""
    values = np.zeros((SIDE, SIDE, 3), np.uint16)
    values[:, : SIDE // 2] = (32768, 0, 65535)
    values[:, SIDE // 2 :] = (65535, 32768, 0)
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in values)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", SIDE, SIDE, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return _halves((128, 0, 255), (255, 128, 0))


def _exif_rotated_jpeg(path):
    stored = _halves(WHITE, (0, 0, 0))
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": the white left half ends on top
    image.save(path, exif=exif, quality=100, subsampling=0)
    return np.rot90(stored, k=-1)


def _rgba_transparent(path):
    array = np.zeros((SIDE, SIDE, 4), np.uint8)
    array[:, : SIDE // 2] = (255, 0, 0, 0)  # fully transparent red: must not show, neither black
    array[:, SIDE // 2 :] = (0, 0, 255, 255)
    Image.fromarray(array).save(path)
    return _halves(WHITE, BLUE)


def _palette_transparent(path):
    image = Image.fromarray(
        np.repeat([[0] * (SIDE // 2) + [1] * (SIDE // 2)], SIDE, axis=0).astype(np.uint8), "P"
    )
    image.putpalette([*RED, *BLUE] + [0] * 762)
    image.save(path, transparency=0)  # palette entry 0 (red) is transparent
    return _halves(WHITE, BLUE)


def _cmyk_jpeg(path):
    Image.new("CMYK", (SIDE, SIDE), (0, 255, 255, 0)).save(path, quality=100)  # pure red in CMYK
    return np.full((SIDE, SIDE, 3), RED, np.uint8)


def _grayscale(path):
    Image.fromarray(_halves(40, 200)[..., 0]).save(path)
    return _halves((40,) * 3, (200,) * 3)


def _gray_alpha(path):
    gray = np.full((SIDE, SIDE), 60, np.uint8)
    alpha = np.zeros_like(gray)
    alpha[:, SIDE // 2 :] = 255
    Image.fromarray(np.stack([gray, alpha], axis=2), "LA").save(path)
    return _halves(WHITE, (60,) * 3)


def _bilevel(path):
    Image.fromarray(_halves(0, 255)[..., 0] > 0).save(path)  # mode "1"
    return _halves((0,) * 3, WHITE)


# name -> (file name, writer returning the expected RGB pixels, tolerance for lossy formats)
CASES = {
    "16bit_png": ("gradient16.png", _gradient_16bit, 0),
    "rgb48_png": ("deep_rgb.png", _rgb_48bit, 0),
    "exif_jpeg": ("rotated.jpg", _exif_rotated_jpeg, 8),
    "rgba": ("transparent.png", _rgba_transparent, 0),
    "palette": ("palette.png", _palette_transparent, 0),
    "cmyk_jpeg": ("cmyk.jpg", _cmyk_jpeg, 3),
    "grayscale": ("gray.png", _grayscale, 0),
    "gray_alpha": ("gray_alpha.png", _gray_alpha, 0),
    "bilevel": ("bilevel.png", _bilevel, 0),
}


class _Recorder:
    """A CLIP preprocess that remembers the RGB pixels the image tower is given."""

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []
        self.transform = open_clip.image_transform(32, is_train=False)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        self.seen.append(np.asarray(image).copy())
        return self.transform(image)


@pytest.fixture
def clip():
    """A zero-shot FewShotCLIP on a tiny random open_clip model, whose preprocess records its input; a new
    one per test, so that its feature cache holds only what the test put there."""
    torch.manual_seed(0)
    model = CLIP(
        embed_dim=32,
        vision_cfg=CLIPVisionCfg(image_size=32, patch_size=8, width=32, layers=1, head_width=16),
        text_cfg=CLIPTextCfg(context_length=16, vocab_size=49408, width=32, heads=2, layers=1),
    ).eval()
    recorder = _Recorder()
    tokenizer = open_clip.get_tokenizer("ViT-B-32", context_length=16)
    clf = FewShotCLIP.from_model(
        model, recorder, tokenizer, method="zero_shot", templates="single", cache_dir=False
    )
    support = [Image.new("RGB", (SIDE, SIDE), c) for c in ((10, 200, 30), (200, 10, 180))]  # no case's pixels
    clf.fit(support, ["green", "purple"], ["green", "purple"])
    return clf, recorder


def _vlm_pixels(clip, path) -> np.ndarray:
    clf, recorder = clip
    recorder.seen.clear()
    clf.predict([path])
    assert len(recorder.seen) == 1
    return recorder.seen[0]


@pytest.mark.parametrize("case", CASES)
def test_every_domain_gives_the_same_expected_pixels(case, tmp_path, clip):
    name, write, tolerance = CASES[case]
    path = tmp_path / name
    expected = write(path)
    loaded = {
        "vision.load_image": np.asarray(vision.load_image(path)),
        "vision dataset": np.asarray(vision.as_dataset([(path, 0)], transform=lambda image: image)[0][0]),
        "vlm predict": _vlm_pixels(clip, path),
        "diffusion.load_images": np.asarray(diffusion.load_images([path], size=SIDE)[0]),
    }
    for domain, pixels in loaded.items():
        assert pixels.shape == expected.shape, domain
        error = np.abs(pixels.astype(int) - expected.astype(int)).max()
        assert error <= tolerance, f"{domain}: off by {error} from the expected pixels"
    first = loaded["vision.load_image"]
    assert all(np.array_equal(first, pixels) for pixels in loaded.values()), "the domains disagree"


@pytest.fixture(scope="module")
def classify_input(tmp_path_factory):
    """The studio's Classify image box: what it hands the classifier for an uploaded file."""
    from gradio.data_classes import ImageData

    from studio.ui import build_app

    app = build_app(tmp_path_factory.mktemp("workspace"))
    (box,) = [block for block in app.blocks.values() if getattr(block, "elem_id", None) == "fewshot-image"]
    return lambda path: box.preprocess(ImageData(path=str(path), orig_name=path.name))


@pytest.mark.parametrize("case", ["16bit_png", "exif_jpeg", "rgba", "palette", "gray_alpha"])
def test_the_studio_classify_box_gives_the_same_pixels(case, tmp_path, clip, classify_input):
    name, write, tolerance = CASES[case]
    path = tmp_path / name
    expected = write(path)
    pixels = _vlm_pixels(clip, classify_input(path))
    assert np.abs(pixels.astype(int) - expected.astype(int)).max() <= tolerance


def test_a_16bit_png_is_not_a_white_image_to_the_feature_cache(tmp_path, clip):
    """Before one loader existed, vlm whitened 16-bit files: same cache key and probabilities as white."""
    clf, recorder = clip
    Image.new("RGB", (SIDE, SIDE), WHITE).save(tmp_path / "white.png")
    expected = _gradient_16bit(tmp_path / "gradient16.png")
    white = clf.predict_proba([tmp_path / "white.png"])
    recorder.seen.clear()
    gradient = clf.predict_proba([tmp_path / "gradient16.png"])
    assert len(recorder.seen) == 1 and np.array_equal(recorder.seen[0], expected)
    assert not np.allclose(white, gradient)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("pixels", [144, 400], ids=["above_the_limit", "above_twice_the_limit"])
def test_a_decompression_bomb_is_a_clear_error_in_every_domain(pixels, tmp_path, monkeypatch, clip):
    side = int(pixels**0.5)
    Image.new("RGB", (side, side)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # PIL warns above the limit, raises above twice it
    clf, _ = clip
    loaders = {
        "vision": lambda path: vision.load_image(path),
        "vlm": lambda path: clf.predict([path]),
        "diffusion": lambda path: diffusion.load_images([path], size=SIDE),
    }
    for domain, load in loaders.items():
        with pytest.raises(ValueError, match=r"bomb\.png.*decompression bomb") as caught:
            load(tmp_path / "bomb.png")
        assert "\n" not in str(caught.value), domain
