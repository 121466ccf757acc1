"""Image data: corrupt files, empty classes, odd image modes, labels."""

import numpy as np
import pytest
from PIL import Image

import vision
from studio.images import to_rgb


def _identity(image):
    return image


def test_folder_classes_and_samples(image_folder):
    samples, classes = vision.scan_image_folder(image_folder)
    assert classes == ["circle", "square", "stripes"]
    assert len(samples) == 12 and {label for _, label in samples} == {0, 1, 2}


def test_corrupt_image_is_named_or_skipped(image_folder):
    bad = image_folder / "square" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(ValueError, match=r"corrupt image .*square/broken\.png.*on_corrupt='skip'"):
        vision.scan_image_folder(image_folder)
    with pytest.warns(UserWarning, match="broken.png"):
        samples, _ = vision.scan_image_folder(image_folder, on_corrupt="skip")
    assert bad not in [path for path, _ in samples] and len(samples) == 12


def test_empty_class_folder_is_an_error(image_folder):
    (image_folder / "triangle").mkdir()
    with pytest.raises(ValueError, match=r"class folder .*triangle has no readable images"):
        vision.scan_image_folder(image_folder)


def test_folder_without_classes_is_an_error(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "loose.png")
    with pytest.raises(ValueError, match="no class sub-folders"):
        vision.scan_image_folder(tmp_path)
    with pytest.raises(FileNotFoundError):
        vision.scan_image_folder(tmp_path / "missing")


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGBA", (9, 7), (255, 0, 0, 0)),
        Image.new("L", (9, 7), 128),
        Image.fromarray(np.linspace(0, 65535, 63, dtype=np.uint16).reshape(7, 9)),
        Image.new("P", (9, 7)),
    ],
    ids=["rgba", "gray", "16bit", "palette"],
)
def test_any_mode_becomes_rgb(image):
    rgb = to_rgb(image)
    assert rgb.mode == "RGB" and rgb.size == (9, 7)


def test_transparent_pixels_become_white_and_16bit_keeps_contrast():
    assert to_rgb(Image.new("RGBA", (2, 2), (255, 0, 0, 0))).getpixel((0, 0)) == (255, 255, 255)
    ramp = to_rgb(Image.fromarray(np.array([[0, 65535]], dtype=np.uint16)))
    assert ramp.getpixel((0, 0))[0] == 0 and ramp.getpixel((1, 0))[0] == 255


def test_exif_rotation_is_applied(tmp_path):
    image = Image.new("RGB", (10, 4))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90°
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert vision.load_image(tmp_path / "rotated.jpg").size == (4, 10)


def test_list_data_with_named_and_bad_labels():
    images = [Image.new("RGB", (8, 8))] * 3
    dataset = vision.as_dataset(list(zip(images, ["dog", "cat", "dog"], strict=False)), _identity)
    assert dataset.classes == ["cat", "dog"] and [label for _, label in dataset.samples] == [1, 0, 1]
    with pytest.raises(ValueError, match=r"\['cow'\] are not among"):
        vision.as_dataset([(images[0], "cow")], _identity, classes=["cat", "dog"])
    with pytest.raises(ValueError, match="non-negative"):
        vision.as_dataset([(images[0], -1)], _identity)
    with pytest.raises(ValueError, match="empty"):
        vision.as_dataset([], _identity)


def test_unreadable_path_in_a_list_names_the_file(tmp_path):
    bad = tmp_path / "x.jpg"
    bad.write_text("hello")
    dataset = vision.as_dataset([(bad, 0)], _identity)
    with pytest.raises(ValueError, match="x.jpg is not a readable image file"):
        dataset[0]
