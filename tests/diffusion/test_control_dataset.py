"""Reading control dataset folders: captions, condition images, extractors and bad folders."""

import json

import numpy as np
import pytest
from PIL import Image

from diffusion.conditions import canny
from diffusion.control.dataset import read_control_folder
from studio.world import Scene
from tests.diffusion.tiny import write_control_pairs


def _write_pairs(folder, n=3, size=32):
    scenes = [Scene(["circle", "square", "triangle"][i % 3], "red") for i in range(n)]
    write_control_pairs(folder, scenes, size=size)
    return folder


def test_pairs_with_txt_and_metadata_captions(tmp_path):
    folder = _write_pairs(tmp_path)
    (folder / "001.txt").unlink()
    (folder / "metadata.jsonl").write_text(
        json.dumps({"file_name": "001.png", "text": "from metadata"}) + "\n"
    )
    examples = read_control_folder(folder, 32)
    assert [e.name for e in examples] == ["000.png", "001.png", "002.png"]
    assert examples[1].caption == "from metadata"
    assert examples[0].caption.startswith("a red circle")
    truth = np.asarray(Image.open(folder / "conditions" / "000.png").convert("RGB"))
    assert np.array_equal(np.asarray(examples[0].condition), truth)
    assert examples[0].image.size == (32, 32) and examples[0].condition.mode == "RGB"


def test_images_are_fitted_to_the_training_size_with_their_conditions(tmp_path):
    examples = read_control_folder(_write_pairs(tmp_path), 16)
    assert {e.image.size for e in examples} == {(16, 16)} == {e.condition.size for e in examples}


def test_condition_of_another_size_is_resized_with_a_warning(tmp_path):
    folder = _write_pairs(tmp_path)
    big = Image.open(folder / "conditions" / "000.png").resize((64, 64), Image.Resampling.NEAREST)
    big.save(folder / "conditions" / "000.png")
    with pytest.warns(UserWarning, match="resized"):
        examples = read_control_folder(folder, 32)
    assert examples[0].condition.size == (32, 32)


def test_missing_caption_trains_with_an_empty_one_and_warns(tmp_path):
    folder = _write_pairs(tmp_path)
    (folder / "002.txt").unlink()
    with pytest.warns(UserWarning, match="without a caption"):
        examples = read_control_folder(folder, 32)
    assert examples[2].caption == ""


def test_extractor_derives_conditions_from_the_images(tmp_path):
    folder = _write_pairs(tmp_path)
    examples = read_control_folder(folder, 32, condition="canny", condition_params={"low_threshold": 20})
    expected = canny(examples[0].image, low_threshold=20).convert("RGB")
    assert np.array_equal(np.asarray(examples[0].condition), np.asarray(expected))


def test_ip_adapter_data_needs_no_conditions(tmp_path):
    folder = _write_pairs(tmp_path)
    examples = read_control_folder(folder, 32, need_condition=False)
    assert len(examples) == 3 and all(e.condition is None for e in examples)


def test_no_images_is_an_error_that_says_what_was_expected(tmp_path):
    with pytest.raises(ValueError, match="no training images.*captions"):
        read_control_folder(tmp_path, 32)
    with pytest.raises(FileNotFoundError):
        read_control_folder(tmp_path / "missing", 32)


def test_images_without_conditions_are_an_error_naming_the_layout(tmp_path):
    folder = _write_pairs(tmp_path)
    for file in (folder / "conditions").iterdir():
        file.unlink()
    with pytest.raises(ValueError, match="conditions/<same name>.*condition='canny'"):
        read_control_folder(folder, 32)


def test_metadata_cannot_point_outside_the_folder(tmp_path):
    folder = _write_pairs(tmp_path / "data")
    row = {"file_name": "000.png", "text": "x", "condition_file_name": "../../secret.png"}
    (folder / "metadata.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(ValueError, match="outside"):
        read_control_folder(folder, 32)


def test_malformed_metadata_names_the_line(tmp_path):
    folder = _write_pairs(tmp_path)
    (folder / "metadata.jsonl").write_text('{"file_name": "000.png"}\nnot json\n')
    with pytest.raises(ValueError, match="metadata.jsonl:2"):
        read_control_folder(folder, 32)
