"""Training each control method on the tiny pipeline: what changes, stock loading, generate, resume, errors."""

import json

import numpy as np
import open_clip
import pytest
import torch
from diffusers import (
    ControlNetModel,
    StableDiffusionAdapterPipeline,
    StableDiffusionControlNetPipeline,
    StableDiffusionPipeline,
    T2IAdapter,
)
from PIL import Image
from safetensors.torch import load_file, save_file

import diffusion
from diffusion.artifacts import read_artifact
from diffusion.conditions import extract_condition
from studio.core import resolve_asset
from studio.world import Scene, render_with_conditions
from tests.diffusion.tiny import sample, write_control_pairs
from tests.helpers import StopAt

PROMPT = "a red circle on a grey background"
STEPS = 2


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairs")
    scenes = [
        Scene(s, c, background="grey")
        for s, c in [("circle", "red"), ("square", "blue"), ("triangle", "green")]
    ]
    write_control_pairs(folder, scenes)
    return folder


@pytest.fixture(scope="module")
def pipe(tiny_sd_dir):
    return diffusion.load_pipeline(tiny_sd_dir, disable_progress_bar=True)


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _train(pipe, pairs, method, out, **kw):
    kw.setdefault("config", {"lr": 1e-2})
    return diffusion.train_control(
        pipe, pairs, method=method, steps=STEPS, output_dir=out, batch_size=2, progress=False, **kw
    )


@pytest.fixture(scope="module")
def trained(pipe, pairs, tmp_path_factory):
    """Each method trained once; the base modules are snapshotted before and compared after."""
    before = {name: _snapshot(getattr(pipe, name)) for name in ("unet", "vae", "text_encoder")}
    root = tmp_path_factory.mktemp("arts")
    arts = {
        "controlnet": _train(pipe, pairs, "controlnet", root / "cn"),
        "t2i_adapter": _train(pipe, pairs, "t2i_adapter", root / "t2i", condition="canny"),
        "ip_adapter": _train(pipe, pairs, "ip_adapter", root / "ip", preview_every=1, preview_steps=1),
    }
    return arts, before


def _gen(pipe, adapters, prompt=PROMPT, **kw):
    images = diffusion.generate(
        pipe, prompt, adapters=adapters, num_inference_steps=2, guidance_scale=3.0, **kw
    )
    return np.asarray(images[0])


def _stock(pipeline_cls, base_dir, **modules):
    """A stock diffusers pipeline read fresh from the saved base model: none of our loaders or objects."""
    stock = pipeline_cls.from_pretrained(base_dir, local_files_only=True, **modules)
    stock.set_progress_bar_config(disable=True)
    return stock


def _stock_call(stock, **kw):
    return np.asarray(sample(stock, PROMPT, guidance_scale=3.0, output_type="pil", **kw)[0])


def test_training_changes_only_the_control(pipe, trained):
    arts, before = trained
    for name, state in before.items():
        after = getattr(pipe, name).state_dict()
        assert set(after) == set(state), f"{name} gained or lost tensors"
        assert all(torch.equal(after[k], v) for k, v in state.items()), f"{name} changed"
        assert all(p.requires_grad for p in getattr(pipe, name).parameters()), "requires_grad not restored"
    # ... and the controls did learn: they differ from a fresh initialisation.
    controlnet = ControlNetModel.from_pretrained(arts["controlnet"])
    assert any(p.abs().sum() > 0 for p in controlnet.controlnet_down_blocks.parameters())
    ip = load_file(arts["ip_adapter"] / "ip_adapter.safetensors")
    cross = pipe.unet.get_submodule(
        next(n for n in pipe.unet.attn_processors if n.endswith("attn2.processor")).removesuffix(".processor")
    )
    assert not torch.equal(ip["ip_adapter.1.to_k_ip.weight"], cross.to_k.weight)


def test_artifacts_record_method_base_model_and_condition(pipe, trained):
    arts, _ = trained
    t2i = read_artifact(arts["t2i_adapter"])
    assert t2i.kind == "t2i_adapter" and t2i.base_model == pipe.base_model_id
    assert t2i.extra["condition"] == "canny" and t2i.hyperparameters["early_timesteps"] is True
    ip = read_artifact(arts["ip_adapter"] / "ip_adapter.safetensors")  # the single file describes itself
    assert ip.kind == "ip_adapter" and ip.extra["image_encoder"] == "studio/shapes-clip"
    assert read_artifact(arts["controlnet"]).hyperparameters["lr"] == 1e-2
    assert (arts["ip_adapter"] / "previews" / "step-000001.png").is_file()


def test_controlnet_loads_in_the_stock_pipeline_with_identical_images(pipe, pairs, trained, tiny_sd_dir):
    arts, _ = trained
    condition = (pairs / "conditions" / "000.png").as_posix()
    ours = _gen(pipe, [arts["controlnet"]], control_image=condition)
    stock = _stock(
        StableDiffusionControlNetPipeline,
        tiny_sd_dir,
        controlnet=ControlNetModel.from_pretrained(arts["controlnet"]),
    )
    assert np.array_equal(_stock_call(stock, image=Image.open(condition).convert("RGB")), ours)
    assert not np.array_equal(_gen(pipe, []), ours)


def test_t2i_adapter_loads_in_the_stock_pipeline_and_applies_its_extractor(pipe, trained, tiny_sd_dir):
    arts, _ = trained
    photo = render_with_conditions(Scene("square", "blue", background="grey"), size=16, seed=7)["image"]
    ours = _gen(pipe, [arts["t2i_adapter"]], control_image=photo)
    edges = extract_condition(photo, "canny").convert("RGB")
    stock = _stock(
        StableDiffusionAdapterPipeline, tiny_sd_dir, adapter=T2IAdapter.from_pretrained(arts["t2i_adapter"])
    )
    assert np.array_equal(_stock_call(stock, image=edges), ours)
    assert np.array_equal(_gen(pipe, [arts["t2i_adapter"]], control_image=edges, extract=False), ours)


def test_ip_adapter_loads_with_the_stock_loader_with_identical_images(pipe, pairs, trained, tiny_sd_dir):
    arts, _ = trained
    reference = pairs / "001.png"
    ours = _gen(pipe, [arts["ip_adapter"]], ip_image=reference)
    assert pipe.unet.encoder_hid_proj is None  # generate unloaded it again
    # The stock side: open_clip's own loader for the image tower, diffusers' own for the rest.
    tower, _, preprocess = open_clip.create_model_and_transforms(
        f"local-dir:{resolve_asset('studio/shapes-clip')}"
    )
    with torch.no_grad():
        embeds = tower.eval().encode_image(preprocess(Image.open(reference).convert("RGB"))[None])[:, None]
    stock = _stock(StableDiffusionPipeline, tiny_sd_dir)
    stock.load_ip_adapter(
        arts["ip_adapter"], subfolder="", weight_name="ip_adapter.safetensors", image_encoder_folder=None
    )
    stock_image = _stock_call(stock, ip_adapter_image_embeds=[torch.cat([torch.zeros_like(embeds), embeds])])
    assert np.array_equal(stock_image, ours)
    assert not np.array_equal(
        _gen(pipe, [arts["ip_adapter"]], ip_image=reference, ip_adapter_scale=0.0), ours
    )


@pytest.mark.parametrize(
    ("kind", "scale_key"),
    [("controlnet", "controlnet_conditioning_scale"), ("t2i_adapter", "adapter_conditioning_scale")],
)
def test_several_controls_at_once_with_weights(pipe, pairs, trained, kind, scale_key):
    arts, _ = trained
    condition = pairs / "conditions" / "000.png"
    extract = {"extract": False}
    single = _gen(pipe, [arts[kind]], control_image=condition, **extract).astype(int)
    halves = _gen(pipe, [arts[kind]] * 2, control_image=[condition] * 2, **{scale_key: [0.5, 0.5]}, **extract)
    assert np.abs(halves.astype(int) - single).max() <= 1  # two halves of one control = the whole control
    off = _gen(pipe, [arts[kind]] * 2, control_image=[condition] * 2, **{scale_key: [0.0, 0.0]}, **extract)
    assert np.array_equal(off, _gen(pipe, []))


def test_textual_inversion_controlnet_and_ip_adapter_compose_in_one_call(pipe, pairs, trained, tmp_path):
    arts, _ = trained
    width = pipe.text_encoder.config.hidden_size
    for seed in (0, 1):  # two embeddings of one token
        vector = torch.randn(1, width, generator=torch.Generator().manual_seed(seed))
        save_file({"<thing>": vector}, tmp_path / f"ti{seed}.safetensors")
    prompt = "a <thing> on a grey background"
    condition, reference = pairs / "conditions" / "000.png", pairs / "001.png"

    def run(ti, *controls, **kw):
        return _gen(pipe, [tmp_path / ti, *controls], prompt, control_image=condition, **kw)

    mixed = run("ti0.safetensors", arts["controlnet"], arts["ip_adapter"], ip_image=reference)
    assert mixed.shape == (16, 16, 3)
    # each part counts: the token's embedding, the IP-Adapter's reference image, the ControlNet
    assert not np.array_equal(
        mixed, run("ti1.safetensors", arts["controlnet"], arts["ip_adapter"], ip_image=reference)
    )
    assert not np.array_equal(mixed, run("ti0.safetensors", arts["controlnet"]))
    assert not np.array_equal(
        mixed, _gen(pipe, [tmp_path / "ti0.safetensors", arts["ip_adapter"]], prompt, ip_image=reference)
    )
    assert "<thing>" not in pipe.tokenizer.get_vocab() and pipe.unet.encoder_hid_proj is None


def test_resume_gives_the_uninterrupted_result(pipe, pairs, tmp_path):
    config = {"lr": 1e-2, "drop_text": 0.3, "drop_image": 0.3}  # the random drops must replay too

    def run(out, **kw):
        return diffusion.train_control(
            pipe, pairs, "ip_adapter", steps=3, output_dir=tmp_path / out, batch_size=2, progress=False,
            config=config, checkpoint_every=1, **kw,
        )  # fmt: skip

    straight = run("a")
    run("b", callbacks=[StopAt(1)])
    resumed = run("b", resume=True)
    a, b = (load_file(p / "ip_adapter.safetensors") for p in (straight, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    record = json.loads((resumed / "studio_artifact.json").read_text())
    assert record["kind"] == "ip_adapter"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "lora"}, "unknown control method"),
        ({"method": "controlnet", "config": diffusion.IPAdapterConfig()}, "takes a ControlNetConfig"),
        ({"method": "t2i_adapter", "config": {"rank": 4}}, "unknown T2IAdapterConfig fields"),
        ({"method": "controlnet", "condition": "depth"}, "unknown condition"),
    ],
)
def test_bad_training_arguments(pipe, pairs, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        diffusion.train_control(pipe, pairs, steps=1, output_dir=tmp_path, progress=False, **kwargs)


def test_bad_sampling_inputs_are_clear_errors(pipe, pairs, trained, tmp_path):
    arts, _ = trained
    with pytest.raises(ValueError, match="needs control_image"):
        _gen(pipe, [arts["controlnet"]])
    with pytest.raises(ValueError, match="needs ip_image"):
        _gen(pipe, [arts["ip_adapter"]])
    with pytest.raises(ValueError, match="no IP-Adapter support"):
        _gen(
            pipe,
            [arts["t2i_adapter"], arts["ip_adapter"]],
            control_image=pairs / "000.png",
            ip_image=pairs / "000.png",
        )
    with pytest.raises(ValueError, match="cannot be combined"):
        _gen(pipe, [arts["t2i_adapter"], arts["controlnet"]], control_image=pairs / "000.png")
    with pytest.raises(ValueError, match="2 control images for 1"):
        _gen(pipe, [arts["controlnet"]], control_image=[pairs / "000.png", pairs / "001.png"])
    other = diffusion.load_pipeline("studio/shapes-sd")
    with pytest.raises(ValueError, match="base model"):
        _gen(other, [arts["controlnet"]], control_image=pairs / "000.png")


def test_one_image_tower_load_per_generate_call(pipe, pairs, trained, monkeypatch):
    """Two IP-Adapters naming the same image encoder share one load of its tower, and each call loads anew."""
    from diffusion.control import sampling

    arts, _ = trained
    loads = []
    real = sampling.load_image_encoder

    def counted(spec=None, device=None):
        loads.append(spec)
        return real(spec, device)

    monkeypatch.setattr(sampling, "load_image_encoder", counted)
    reference = pairs / "001.png"
    _gen(pipe, [arts["ip_adapter"]] * 2, ip_image=[reference] * 2, ip_adapter_scale=[0.5, 0.5])
    assert len(loads) == 1
    _gen(pipe, [arts["ip_adapter"]], ip_image=reference)
    assert len(loads) == 2


def test_generate_checks_each_artifact_once(pipe, pairs, trained, monkeypatch):
    import importlib

    from diffusion.control import sampling

    gen = importlib.import_module("diffusion.generate")  # the module, not the function it exports
    arts, _ = trained
    checked = []
    real = gen.check_artifact

    def counted(info, *args, **kwargs):
        checked.append(info.path)
        return real(info, *args, **kwargs)

    monkeypatch.setattr(gen, "check_artifact", counted)
    monkeypatch.setattr(sampling, "check_artifact", counted)
    _gen(pipe, [arts["controlnet"]], control_image=pairs / "conditions" / "000.png", extract=False)
    assert len(checked) == 1
