"""`diffusion.images`: user images of any mode/size/orientation become same-size RGB; bad input is named."""

import numpy as np
import pytest
from PIL import Image

from diffusion.images import images_to_tensor, load_images


def test_modes_sizes_and_bit_depths_are_normalised(tmp_path):
    rgba = Image.new("RGBA", (40, 20), (255, 0, 0, 0))  # fully transparent: must become the white background
    gray = Image.new("L", (10, 30), 128)
    deep = Image.fromarray(np.full((16, 16), 65535, dtype=np.uint16))  # 16-bit white, not clipped to 255
    deep.save(tmp_path / "deep.png")
    palette = Image.new("P", (12, 12), 3)
    images = load_images([rgba, gray, tmp_path / "deep.png", palette, np.zeros((8, 9, 3), np.uint8)], size=16)
    assert [im.size for im in images] == [(16, 16)] * 5 and {im.mode for im in images} == {"RGB"}
    assert np.asarray(images[0]).min() == 255
    assert np.allclose(np.asarray(images[1]), 128, atol=1)
    assert np.asarray(images[2]).min() == 255
    tensor = images_to_tensor(images)
    assert tensor.shape == (5, 3, 16, 16) and tensor.min() >= -1 and tensor.max() <= 1


def test_exif_rotation_is_applied(tmp_path):
    array = np.zeros((20, 40, 3), np.uint8)
    array[:, :20] = 255  # left half white
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    (loaded,) = load_images(tmp_path / "rotated.jpg", size=20)
    top, bottom = np.asarray(loaded)[:5].mean(), np.asarray(loaded)[-5:].mean()
    assert top > 200 and bottom < 50  # the white half ends on top once rotated


def test_folder_is_read_in_name_order(tmp_path):
    for name, value in (("b.png", 200), ("a.png", 10)):
        Image.new("RGB", (8, 8), (value,) * 3).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    images = load_images(tmp_path, size=8)
    assert [np.asarray(im)[0, 0, 0] for im in images] == [10, 200]


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="at least 1 image"):
        load_images([], size=8)
    with pytest.raises(ValueError, match="no image files"):
        load_images(tmp_path, size=8)
    (tmp_path / "fake.png").write_bytes(b"this is not a png")
    with pytest.raises(ValueError, match="image 0: .*fake.png is not a readable image"):
        load_images([tmp_path / "fake.png"], size=8)
    Image.new("RGB", (32, 32)).save(tmp_path / "cut.png")
    (tmp_path / "truncated.png").write_bytes((tmp_path / "cut.png").read_bytes()[:60])
    with pytest.raises(ValueError, match="truncated.png"):
        load_images([tmp_path / "cut.png", tmp_path / "truncated.png"], size=8)
    with pytest.raises(ValueError, match="does not exist"):
        load_images([tmp_path / "missing.png"], size=8)
    with pytest.raises(ValueError, match="zero-sized"):
        load_images([Image.new("RGB", (0, 5))], size=8)
