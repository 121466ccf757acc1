"""SVDiff's Cut-Mix-Unmix: collages join two concepts' central halves under a prompt naming both in place, the
Unmix penalty is zero exactly when each subject's words attend only to its own half and reaches the spectral
shifts, a run trains only the shifts and leaves no hook behind, and the option is off unless asked for."""

import pytest
import torch
from safetensors.torch import load_file

import diffusion
from diffusion.concept import (
    Concept,
    ConceptDataset,
    UnmixAttention,
    cut_mix,
    mix_prompts,
    subject_sides,
    unmix_penalty,
)
from diffusion.concept.cutmix import LEFT, NO_SUBJECT, RIGHT, CutMixUnmix
from diffusion.latents import LatentCache
from diffusion.svdiff import SVDiffConfig
from studio.core import adapter_layers, inject
from tests.diffusion.tiny import concept_images

SUBJECTS = ["<a> circle", "<b> square"]


def _cache(value: float, n: int = 2) -> LatentCache:
    """A latent cache whose every draw is `value` everywhere plus the column index (std 0)."""
    mean = value + torch.arange(8.0).expand(n, 4, 8, 8).clone()
    return LatentCache(mean, torch.zeros_like(mean), n)


def test_a_collage_joins_the_central_halves_under_a_prompt_naming_both_in_place(tiny_pipe):
    left, right = _cache(100.0).sample(0), _cache(200.0).sample(0)
    mixed = cut_mix(left, right)
    assert mixed.shape == left.shape
    torch.testing.assert_close(mixed[..., :4], left[..., 2:6])  # the central half of each, side by side
    torch.testing.assert_close(mixed[..., 4:], right[..., 2:6])

    prompts, pairs = mix_prompts(SUBJECTS)
    assert [prompts[i] for i in pairs[0, 1]] == [
        "a photo of a <a> circle on the left and a <b> square on the right",
        "a photo of a <b> square and a <a> circle",
    ]
    assert [prompts[i] for i in pairs[1, 0]][
        0
    ] == "a photo of a <b> square on the left and a <a> circle on the right"

    tokenizer = tiny_pipe.tokenizer
    ids = tokenizer(prompts[pairs[0, 1][1]], add_special_tokens=False, return_tensors="pt").input_ids[0]
    subject_ids = [tokenizer(s, add_special_tokens=False).input_ids for s in SUBJECTS]
    sides = subject_sides(ids, subject_ids, (0, 1)).tolist()
    words = tokenizer.convert_ids_to_tokens(ids)
    assert [w for w, s in zip(words, sides, strict=True) if s == LEFT] == [
        "<</w>",
        "a</w>",
        "></w>",
        "circle</w>",
    ]
    assert [w for w, s in zip(words, sides, strict=True) if s == RIGHT] == [
        "<</w>",
        "b</w>",
        "></w>",
        "square</w>",
    ]
    assert sides.count(NO_SUBJECT) == len(words) - 8

    # Every item of a probability-1 dataset is such a collage, under one of its pair's prompts.
    ranges = {(0, 1): range(10, 12), (1, 0): range(12, 14)}
    dataset = ConceptDataset([_cache(100.0), _cache(200.0)], [range(0, 5), range(5, 10)],
                             mix=CutMixUnmix(1.0, 1.0), mix_prompts=ranges)  # fmt: skip
    torch.manual_seed(0)
    seen = set()
    for index in range(len(dataset)):
        item = dataset[index]
        pair = (0, 1) if item["latents"][0, 0, 0] < 150 else (1, 0)
        expected = cut_mix(*[_cache(100.0 * (1 + c)).sample(0) for c in pair])
        torch.testing.assert_close(item["latents"], expected)
        assert item["prompt"] in ranges[pair]
        seen.add(pair)
    assert seen == {(0, 1), (1, 0)}  # either concept lands on either side


def test_unmix_penalty_is_zero_exactly_when_each_subject_stays_in_its_half():
    height, width, words = 2, 4, 5
    sides = torch.tensor([[NO_SUBJECT, LEFT, NO_SUBJECT, RIGHT, NO_SUBJECT]])
    column = torch.arange(height * width) % width
    probs = torch.full((1, 2, height * width, words), 0.1)
    probs[..., 1] = torch.where(column < 2, 0.5, 0.0)  # the left subject's word: left half only
    probs[..., 3] = torch.where(column >= 2, 0.5, 0.0)  # the right subject's word: right half only
    assert unmix_penalty(probs, sides, height, width).item() == 0.0
    leaked = probs.clone()
    leaked[0, 1, 3, 1] = 0.4  # one head at one right-half position attends to the left subject's word
    assert unmix_penalty(leaked, sides, height, width).item() == pytest.approx(0.4**2 / (2 * 2 * 4))
    no_subject = torch.full_like(sides, NO_SUBJECT)  # a one-concept batch costs nothing
    assert unmix_penalty(leaked, no_subject, height, width).item() == 0.0


def test_the_penalty_reaches_the_spectral_shifts_only_inside_watch(tiny_pipe):
    unet = tiny_pipe.unet
    inject(unet, SVDiffConfig())
    prompts, pairs = mix_prompts(SUBJECTS)
    ids = tiny_pipe.tokenizer(prompts[0], padding="max_length", return_tensors="pt").input_ids
    subject_ids = [tiny_pipe.tokenizer(s, add_special_tokens=False).input_ids for s in SUBJECTS]
    sides = subject_sides(ids[0], subject_ids, (0, 1))[None]
    with torch.no_grad():
        context = tiny_pipe.text_encoder(ids)[0]
    attention = UnmixAttention(unet)
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))

    def penalty_and_grads():
        unet.zero_grad(set_to_none=True)
        with attention.watch(sides, (8, 8)):
            unet(x, torch.tensor([500]), encoder_hidden_states=context)
        penalty = attention.penalty()
        penalty.backward()
        return penalty, {n: p.grad for n, p in unet.named_parameters() if p.grad is not None}

    penalty, grads = penalty_and_grads()
    assert penalty.item() > 0
    assert grads and all(n.endswith(".delta") for n in grads)
    assert any("attn2.to_k" in n and g.abs().sum() > 0 for n, g in grads.items())
    other = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    unet(other, torch.tensor([900]), encoder_hidden_states=context)  # outside `watch`: nothing recorded
    assert attention.penalty().item() == penalty.item()
    # Gradient checkpointing recomputes the blocks in backward: the same penalty and gradients, no mismatch.
    unet.train().enable_gradient_checkpointing()
    again, checkpointed = penalty_and_grads()
    assert again.item() == penalty.item() and checkpointed.keys() == grads.keys()
    assert all(torch.allclose(checkpointed[n], g, atol=1e-7) for n, g in grads.items())
    attention.remove()
    assert not any(m._forward_hooks for m in unet.modules())


def _two_concepts(pipe, out, **options):
    options = {"concepts": [Concept("<b>", concept_images(2, seed=2), "square")], **options}
    return diffusion.personalize(
        pipe, concept_images(2, seed=1), method="svdiff", token="<a>", class_word="circle", steps=2,
        batch_size=2, lr=0.5, output_dir=out, progress=False, **options,
    )  # fmt: skip


def test_a_cut_mix_unmix_run_trains_only_the_shifts_and_the_penalty_counts(tiny_pipe, tmp_path):
    before = {k: v.clone() for k, v in tiny_pipe.unet.state_dict().items()}
    options = dict(cut_mix_unmix=True, cut_mix_probability=1.0)
    art = _two_concepts(tiny_pipe, tmp_path / "unmix", unmix_weight=1000.0, **options)
    after = tiny_pipe.unet.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], v) for k, v in before.items())
    assert not adapter_layers(tiny_pipe.unet) and not any(m._forward_hooks for m in tiny_pipe.unet.modules())
    shifts = load_file(art / "unet" / "adapter_model.safetensors")
    assert (
        shifts
        and all(k.endswith(".delta") for k in shifts)
        and any(v.abs().sum() > 0 for v in shifts.values())
    )
    info = diffusion.read_artifact(art)
    assert info.hyperparameters["cut_mix_unmix"] is True
    assert info.extra["concepts"] == [{"token": "<b>", "class_word": "square"}]
    assert (
        "a photo of a <a> circle on the left and a <b> square on the right" in info.hyperparameters["prompts"]
    )
    plain = _two_concepts(tiny_pipe, tmp_path / "mix", unmix_weight=0.0, **options)
    unmixed = load_file(plain / "unet" / "adapter_model.safetensors")
    key = next(k for k in shifts if "attn2.to_k" in k)
    assert not torch.equal(shifts[key], unmixed[key])  # the Unmix penalty moved the cross-attention's shifts


def test_off_by_default_and_refused_with_one_concept(tiny_pipe, tmp_path, monkeypatch):
    assert SVDiffConfig().cut_mix_unmix is False
    with pytest.raises(ValueError, match="cut_mix_unmix needs two or more concepts"):
        diffusion.personalize(tiny_pipe, concept_images(2), method="svdiff", token="<a>", cut_mix_unmix=True,
                              steps=1, output_dir=tmp_path / "one", progress=False)  # fmt: skip

    def untouched(*args, **kwargs):
        raise AssertionError("Cut-Mix-Unmix ran although it is off")

    # Off, a run of two concepts draws no collage and hooks nothing (the one-concept path is bit-identical to
    # what it was before the option existed).
    monkeypatch.setattr("diffusion.concept.data.cut_mix", untouched)
    monkeypatch.setattr("diffusion.concept.run.UnmixAttention", untouched)
    art = _two_concepts(tiny_pipe, tmp_path / "off")
    assert diffusion.read_artifact(art).hyperparameters["cut_mix_unmix"] is False
    with pytest.raises(ValueError, match="names two concepts"):
        _two_concepts(tiny_pipe, tmp_path / "twice", concepts=[Concept("<a>", concept_images(1))])
    with pytest.raises(ValueError, match="concept '<b>' has no images"):
        _two_concepts(tiny_pipe, tmp_path / "none", concepts=[{"token": "<b>"}])


def test_a_one_concept_method_refuses_more_concepts(tiny_pipe, tmp_path):
    with pytest.raises(ValueError, match="textual_inversion learns one concept per run, got 2"):
        diffusion.personalize(tiny_pipe, concept_images(1), token="<a>", steps=1, progress=False,
                              concepts=[{"token": "<b>", "images": concept_images(1)}], output_dir=tmp_path / "ti")  # fmt: skip


def test_cut_mix_unmix_on_sdxl(tiny_sdxl, tmp_path):
    """Two text encoders, one word position: the SDXL run trains the shifts and leaves no hook behind, also on
    projections it does not shift (which outlive the run)."""
    art = diffusion.personalize(
        tiny_sdxl, concept_images(2, seed=1), method="svdiff", token="<a>", class_word="circle",
        concepts=[Concept("<b>", concept_images(2, seed=2), "square")], steps=2, batch_size=2, lr=0.5,
        cut_mix_unmix=True, cut_mix_probability=1.0, exclude=["attn2.to_q", "attn2.to_k"],
        output_dir=tmp_path / "xl", progress=False,
    )  # fmt: skip
    shifts = load_file(art / "unet" / "adapter_model.safetensors")
    assert not any("attn2.to_q" in k or "attn2.to_k" in k for k in shifts)
    assert any(v.abs().sum() > 0 for k, v in shifts.items() if "attn1.to_q" in k)
    assert not any(m._forward_hooks for m in tiny_sdxl.unet.modules())
