"""Vocabulary, held-out split, captions and the scene sampler."""

import pytest

from studio.world import (
    BACKGROUNDS,
    COLOURS,
    HELDOUT_COMBINATIONS,
    HELDOUT_SHAPES,
    PRETRAIN_SHAPES,
    SHAPES,
    TEXTURES,
    Scene,
    has_contrast,
    sample_scenes,
)


def test_vocabulary_is_rich_enough_and_the_split_partitions_the_shapes():
    assert len(PRETRAIN_SHAPES) >= 6 and len(HELDOUT_SHAPES) >= 2 and len(COLOURS) >= 6
    assert len(BACKGROUNDS) >= 4 and len(TEXTURES) >= 3
    assert set(PRETRAIN_SHAPES) | set(HELDOUT_SHAPES) == set(SHAPES)
    assert not set(PRETRAIN_SHAPES) & set(HELDOUT_SHAPES)
    assert all(shape in PRETRAIN_SHAPES for _, shape in HELDOUT_COMBINATIONS)


def test_captions_name_shape_colour_and_background():
    scene = Scene("circle", "red", size="small", position="top left", background="grey", texture="striped")
    assert scene.caption() == "a red circle on a grey background"
    assert scene.caption("detailed") == "a small striped red circle at the top left on a grey background"
    assert Scene("ring", "orange", background="black").caption() == "an orange ring on a black background"
    with pytest.raises(ValueError, match="caption style"):
        scene.caption("poetic")


def test_scene_rejects_unknown_values():
    with pytest.raises(ValueError, match="shape"):
        Scene("dodecahedron", "red")
    with pytest.raises(ValueError, match="colour"):
        Scene("circle", "octarine")


def test_sampling_is_deterministic_and_seed_dependent():
    assert sample_scenes(20, seed=3) == sample_scenes(20, seed=3)
    assert sample_scenes(20, seed=3) != sample_scenes(20, seed=4)


def test_pretrain_never_yields_heldout_scenes_and_heldout_only_those():
    pretrain = sample_scenes(2000, seed=0, split="pretrain")
    assert not any(s.is_heldout for s in pretrain)
    assert {s.shape for s in pretrain} == set(PRETRAIN_SHAPES)
    assert not {(s.colour, s.shape) for s in pretrain} & HELDOUT_COMBINATIONS
    heldout = sample_scenes(500, seed=0, split="heldout")
    assert all(s.is_heldout for s in heldout)
    assert set(HELDOUT_SHAPES) <= {s.shape for s in heldout}
    assert {s.shape for s in sample_scenes(2000, seed=0, split="all")} == set(SHAPES)


def test_fixed_attributes_and_contrast():
    scenes = sample_scenes(50, seed=1, shape="square", background="white")
    assert all(s.shape == "square" and s.background == "white" for s in scenes)
    assert all(has_contrast(s.colour, s.background) for s in scenes)
    assert {s.texture for s in scenes} == set(TEXTURES)


@pytest.mark.parametrize(
    ("split", "fixed", "match"),
    [
        ("pretrain", {"shape": "star"}, "satisfies"),
        ("pretrain", {"shape": "triangle", "colour": "blue"}, "satisfies"),
        ("all", {"flavour": "sweet"}, "unknown scene attributes"),
        ("all", {"texture": "furry"}, "texture"),
        ("everything", {}, "split"),
    ],
)
def test_impossible_requests_raise(split, fixed, match):
    with pytest.raises(ValueError, match=match):
        sample_scenes(3, seed=0, split=split, **fixed)
