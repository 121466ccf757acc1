"""The helpers every domain shares: the CLIP spec spelling, the weights fingerprint, the library version."""

import pytest
import torch

from studio import __version__
from studio.core import (
    join_clip_spec,
    library_version,
    open_clip_weights,
    split_clip_spec,
    weights_fingerprint,
)


@pytest.mark.parametrize(
    "spec, parts",
    [
        ("ViT-B-32", ("ViT-B-32", None)),
        ("ViT-B-32:laion2b_s34b_b79k", ("ViT-B-32", "laion2b_s34b_b79k")),
        ("ViT-B-32:/ckpt/weights.safetensors", ("ViT-B-32", "/ckpt/weights.safetensors")),
        ("hf-hub:org/repo", ("hf-hub:org/repo", None)),
        ("local-dir:/models/clip", ("local-dir:/models/clip", None)),
    ],
)
def test_clip_spec_splits_and_joins_back(spec, parts):
    assert split_clip_spec(spec) == parts
    assert join_clip_spec(*parts) == spec


def test_open_clip_weights_by_kind_of_name():
    assert open_clip_weights("ViT-B-32", "openai") == {"pretrained": "openai"}
    assert open_clip_weights("ViT-B-32", None) == {"pretrained": None}
    assert open_clip_weights("local-dir:/m", None) == {"load_weights": True}
    assert open_clip_weights("hf-hub:org/repo", False) == {"load_weights": False}


def test_weights_fingerprint_follows_the_bytes_not_the_order():
    torch.manual_seed(0)
    weights = {"a": torch.randn(3, 4), "b": torch.randn(5)}
    key = weights_fingerprint(weights)
    assert len(key) == 64
    assert weights_fingerprint(dict(reversed(weights.items()))) == key
    assert weights_fingerprint({name: t.clone() for name, t in weights.items()}) == key
    changed = {**weights, "b": weights["b"].clone()}
    changed["b"][2] += 1e-6
    assert weights_fingerprint(changed) != key
    assert weights_fingerprint({**weights, "a": weights["a"].double()}) != key
    assert weights_fingerprint({"c": weights["a"], "b": weights["b"]}) != key


def test_library_version_names_the_package_and_version():
    assert library_version() == f"adaptation-studio {__version__}"
