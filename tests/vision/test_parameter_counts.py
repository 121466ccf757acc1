"""Trainable parameters on the real vit_base_patch16_224 architecture match the papers (heads excluded)."""

import pytest
import torch

import vision
from studio.core import inject, parameter_report


@pytest.mark.parametrize(
    "config, expected",
    [
        (vision.VPTConfig(num_tokens=50, deep=True), 12 * 50 * 768),
        (vision.VPTConfig(num_tokens=50, deep=False), 50 * 768),
        (vision.AdaptFormerConfig(bottleneck=64), 1_189_632),
        (vision.SSFConfig(), 205_824),
        (vision.LoRAConfig(r=8), 294_912),
    ],
    ids=["vpt-deep", "vpt-shallow", "adaptformer", "ssf", "lora"],
)
def test_vit_base_counts(config, expected):
    with torch.device("meta"):  # the architecture without allocating 86M weights
        model = vision.create_model("vit_base_patch16_224", num_classes=0)
    inject(model, config)
    report = parameter_report(model)
    assert report["adapter"] == expected
    assert report["trainable"] == expected
    assert report["total"] == 85_798_656 + expected
