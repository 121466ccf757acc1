"""The bundled text-to-image pipeline `studio/shapes-sd` and `diffusion.load_pipeline`.

The asset is committed, so a missing folder fails these tests instead of skipping them.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, StableDiffusionPipeline
from PIL import Image
from safetensors.torch import save_file
from transformers import CLIPTokenizer

import diffusion
from diffusion.denoise import training_scheduler
from studio.core import resolve_asset
from tests.diffusion.tiny import sample

NAME = "studio/shapes-sd"
PROMPT = "a red circle on a grey background"
RECIPES = Path(__file__).resolve().parents[2] / "assets" / "recipes"


def _recipe(name: str):
    """A script of `assets/recipes` as a module (the recipes are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pipe():
    return diffusion.load_pipeline(NAME, disable_progress_bar=True)


def test_asset_is_a_complete_small_diffusers_folder():
    folder = resolve_asset(NAME)
    for part in ("model_index.json", "vae", "text_encoder", "tokenizer", "unet", "scheduler"):
        assert (folder / part).exists(), f"{folder / part} is missing; run assets/recipes/shapes_sd.py"
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size <= 12 * 2**20


def test_stock_from_pretrained_loads_offline_in_fp32():
    stock = StableDiffusionPipeline.from_pretrained(resolve_asset(NAME), local_files_only=True)
    assert stock.safety_checker is None and stock.feature_extractor is None
    assert all(p.dtype == torch.float32 for p in stock.unet.parameters())
    assert stock.unet.config.cross_attention_dim == stock.text_encoder.config.hidden_size


def test_load_pipeline_records_the_base_id(pipe):
    assert isinstance(pipe, StableDiffusionPipeline)
    assert pipe.base_model_id == NAME
    folder = diffusion.load_pipeline(resolve_asset(NAME))
    assert folder.base_model_id == str(resolve_asset(NAME))


def _sample(pipe, seed, prompt=PROMPT):
    return sample(pipe, prompt, seed, output_type="pil")[0]


def test_two_step_sample_is_64px_and_seeded(pipe):
    first, again, other = _sample(pipe, 0), _sample(pipe, 0), _sample(pipe, 1)
    assert first.size == (64, 64)
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first), np.asarray(other))


def test_tokenizer_is_offline_with_whole_word_tokens_and_add_tokens():
    tokenizer = CLIPTokenizer.from_pretrained(resolve_asset(NAME) / "tokenizer")
    words = PROMPT.split()
    ids = tokenizer(PROMPT).input_ids
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert len(ids) == len(words) + 2  # every caption word is one token
    assert tokenizer.decode(ids, skip_special_tokens=True) == PROMPT
    assert len(tokenizer("a zebra").input_ids) > 4  # unknown words fall back to characters
    assert tokenizer.add_tokens(["<my-shape>"]) == 1
    assert tokenizer("a <my-shape>").input_ids[2] == len(tokenizer) - 1


def test_a_new_token_embedding_reaches_the_image():
    """A new token with its own embedding row changes the sample (what Textual Inversion relies on)."""
    pipe = diffusion.load_pipeline(NAME, disable_progress_bar=True)
    pipe.tokenizer.add_tokens(["<new>"])
    pipe.text_encoder.resize_token_embeddings(len(pipe.tokenizer))
    with torch.no_grad():
        pipe.text_encoder.get_input_embeddings().weight[-1] = 5.0
    assert not np.array_equal(np.asarray(_sample(pipe, 0, "a <new>")), np.asarray(_sample(pipe, 0, "a red")))


def test_unknown_bundled_name_lists_what_exists():
    with pytest.raises(FileNotFoundError, match="studio/shapes-sd"):
        diffusion.load_pipeline("studio/no-such-model")


def test_ckpt_is_refused_without_unpickling(tmp_path):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"not even a pickle")
    with pytest.raises(ValueError, match="safetensors"):
        diffusion.load_pipeline(ckpt)


def test_single_file_checkpoint_of_an_unknown_architecture_is_a_clear_error(tiny_sd_dir, tmp_path):
    """A single `.safetensors` that is no full SD 1.x/2.x/SDXL checkpoint (here a UNet alone): one line naming
    the file and what to pass instead."""
    unet = StableDiffusionPipeline.from_pretrained(tiny_sd_dir).unet.state_dict()
    file = tmp_path / "model.safetensors"
    save_file({f"model.diffusion_model.{k}": v.contiguous() for k, v in unet.items()}, str(file))
    with pytest.raises(
        ValueError, match=r"model\.safetensors is not a full .* pass its diffusers config folder"
    ) as err:
        diffusion.load_pipeline(file)
    assert "\n" not in str(err.value)


def test_missing_hub_model_is_a_clear_error_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="offline"):
        diffusion.load_pipeline("nobody/no-such-model-xyz")


def test_training_scheduler_matches_the_saved_sampler(pipe):
    training = training_scheduler(pipe)
    assert isinstance(training, DDPMScheduler) and training is not pipe.scheduler
    assert training.config.num_train_timesteps == 1000
    assert training.config.prediction_type == pipe.scheduler.config.prediction_type
    assert torch.equal(training.alphas_cumprod, pipe.scheduler.alphas_cumprod)
    # another sampler's schedule and prediction type carry over too
    other = DDIMScheduler(beta_schedule="linear", beta_end=0.02, prediction_type="v_prediction")
    assert training_scheduler(other).config.prediction_type == "v_prediction"
    assert torch.equal(training_scheduler(other).alphas_cumprod, other.alphas_cumprod)


@pytest.mark.slow
def test_prompted_shape_and_colour_are_recognised():
    metrics = _recipe("eval_shapes_sd").evaluate(diffusion.load_pipeline(NAME), seeds=20)
    assert metrics["joint_accuracy"] >= 0.7, metrics


def test_recipe_timestep_densities():
    recipe = _recipe("shapes_sd")
    draws = {
        kind: recipe.sample_timesteps(kind, 20_000, 1000, torch.Generator().manual_seed(0))
        for kind in ("uniform", "logit-normal")
    }
    for t in draws.values():
        assert t.dtype == torch.long and t.min() >= 0 and t.max() <= 999
    middle = {kind: ((t >= 250) & (t < 750)).float().mean().item() for kind, t in draws.items()}
    assert abs(middle["uniform"] - 0.5) < 0.02
    assert abs(middle["logit-normal"] - 0.728) < 0.02  # P(|N(0, 1)| < logit(0.75) = 1.0986)
    with pytest.raises(ValueError, match="logit-normal"):
        recipe.sample_timesteps("cosine", 4, 1000, torch.Generator())


def test_recipe_alignment_targets_match_open_clip_preprocessing():
    """The recipe's cached CLIP features equal the image tower's features of open_clip's own preprocessing."""
    import vlm

    recipe = _recipe("shapes_sd")
    pixels, _ = recipe.make_dataset(3, 0)
    targets = recipe.encoder_features(pixels)
    model, preprocess, _ = vlm.create_clip("studio/shapes-clip")
    arrays = ((pixels.permute(0, 2, 3, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    batch = torch.stack([preprocess(Image.fromarray(a)) for a in arrays])
    expected = model.visual.trunk.forward_intermediates(batch, indices=[3], intermediates_only=True)[0]
    assert targets.shape == (3, 192, 4, 4)
    torch.testing.assert_close(targets, expected, atol=1e-4, rtol=1e-4)


def test_recipe_alignment_trains_and_leaves_no_hook_or_processor_behind():
    """`--align-weight` and `--matmul-attention` change training only: the saved UNet has no hook and its own
    attention processors."""
    recipe = _recipe("shapes_sd")
    tokenizer = recipe.build_tokenizer(recipe.caption_words())
    _, text_encoder, unet = recipe.build_models(tokenizer)
    processors = {name: type(p) for name, p in unet.attn_processors.items()}
    tokens = recipe.tokenize(tokenizer, [["a red circle", "a red circle on a grey background"]] * 4)
    latents = (torch.randn(4, 4, 16, 16), torch.full((4, 4, 16, 16), 0.1))
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    recipe.train_unet(
        unet,
        text_encoder,
        tokens,
        latents,
        1.0,
        steps=2,
        batch=2,
        device="cpu",
        align=(torch.randn(4, 8, 4, 4), 0.5),
        matmul_attention=True,
    )
    assert not unet.mid_block._forward_hooks
    assert {name: type(p) for name, p in unet.attn_processors.items()} == processors
    assert any(not torch.equal(before[k], v) for k, v in unet.state_dict().items())
