"""The memory options on the tiny pipeline: what each preset turns on, that a run with them trains what one
without them does, that the pipeline is left as it was, and the errors a user can meet."""

import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor2_0
from safetensors.torch import load_file

import diffusion
from diffusion.memory import MemoryOptions, bitsandbytes_available, gradient_checkpointing, memory_savings
from studio.engine import Callback
from studio.world import Scene
from tests.diffusion.tiny import concept_images, write_control_pairs


class Inspect(Callback):
    """Records, at the first step, how the pipeline's modules are held while training."""

    def __init__(self, pipe):
        self.pipe, self.seen = pipe, {}

    def on_step_end(self, state):
        if self.seen:
            return
        unet, text_encoder = self.pipe.unet, self.pipe.text_encoder
        frozen = [p for p in unet.parameters() if not p.requires_grad]
        trainable = [p for m in (unet, text_encoder) for p in m.parameters() if p.requires_grad]
        self.seen = {
            "checkpointing": unet.is_gradient_checkpointing,
            "frozen_dtypes": {p.dtype for p in frozen},
            "vae_dtypes": {p.dtype for p in self.pipe.vae.parameters()},
            "trainable_dtypes": {p.dtype for p in trainable},
        }


def _state(*modules):
    return [{k: v.detach().clone() for k, v in m.state_dict().items()} for m in modules]


def _same(a, b):
    return all(
        x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x) for x, y in zip(a, b, strict=True)
    )


def test_presets_turn_on_more_as_memory_shrinks():
    plain = MemoryOptions(gpu_memory="24").resolved()
    assert not plain.gradient_checkpointing and not plain.offload and plain.optimizer == "adamw"
    small = MemoryOptions(gpu_memory="12").resolved()
    assert small.gradient_checkpointing and small.offload and small.frozen_in_train_dtype
    # The 8-bit AdamW only when it is installed; a preset never fails for want of it.
    assert small.optimizer == ("adamw8bit" if bitsandbytes_available() else "adamw")
    # Options set by hand win over the preset's.
    mixed = MemoryOptions(gpu_memory="12", gradient_checkpointing=False, offload=False).resolved()
    assert not mixed.gradient_checkpointing and not mixed.offload
    if not torch.cuda.is_available():
        auto = MemoryOptions().resolved()
        assert not auto.gradient_checkpointing and not auto.offload


def test_bad_options_are_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"gpu_memory='6'.*'24', '16', '12', '8'"):
        MemoryOptions.of("6")
    with pytest.raises(ValueError, match="optimizer='adam8'"):
        MemoryOptions(optimizer="adam8")
    if not bitsandbytes_available():
        with pytest.raises(ValueError, match=r"bitsandbytes.*adaptation-studio\[memory\].*'adamw'"):
            MemoryOptions(optimizer="adamw8bit")


def test_personalize_refuses_a_bad_preset_before_training(tiny_pipe, tmp_path):
    with pytest.raises(ValueError, match="gpu_memory='9'"):
        diffusion.personalize(tiny_pipe, concept_images(), token="<c>", memory="9", output_dir=tmp_path / "a")
    assert not (tmp_path / "a").exists()


def test_attention_is_pytorch_sdpa(tiny_pipe):
    processors = tiny_pipe.unet.attn_processors.values()
    assert processors and all(isinstance(p, AttnProcessor2_0) for p in processors)


def test_savings_hold_frozen_weights_in_the_training_dtype_and_restore_them_exactly(tiny_pipe):
    unet, vae = tiny_pipe.unet, tiny_pipe.vae
    unet.requires_grad_(False), vae.requires_grad_(False)
    trainable = next(unet.parameters())
    trainable.requires_grad_(True)
    before = _state(unet, vae)
    try:
        with memory_savings(
            MemoryOptions(gpu_memory="12"),
            "bf16",
            frozen=[unet, vae],
            backward=[unet],
            offload=[vae],
            device=lambda: torch.device("cpu"),
        ):
            assert unet.is_gradient_checkpointing
            assert trainable.dtype == torch.float32
            frozen = [p for p in unet.parameters() if p is not trainable]
            assert {p.dtype for p in frozen} == {torch.bfloat16}
            assert {p.dtype for p in vae.parameters()} == {torch.bfloat16}
    finally:
        trainable.requires_grad_(False)
    assert not unet.is_gradient_checkpointing
    assert _same(before, _state(unet, vae))


def _ti(pipe, out, **kw):
    return diffusion.personalize(
        pipe, concept_images(), token="<c>", class_word="circle", steps=2, batch_size=2,
        output_dir=out, progress=False, **kw,
    )  # fmt: skip


def test_textual_inversion_with_checkpointing_and_offload_learns_what_it_does_without(tiny_pipe, tmp_path):
    before = _state(tiny_pipe.unet, tiny_pipe.vae, tiny_pipe.text_encoder)
    plain = _ti(tiny_pipe, tmp_path / "plain", memory="none")
    seen = Inspect(tiny_pipe)
    saving = _ti(tiny_pipe, tmp_path / "saving", memory="12", callbacks=[seen])
    assert seen.seen["checkpointing"] and not tiny_pipe.unet.is_gradient_checkpointing
    # Gradient checkpointing recomputes the same activations: the same embedding is learned.
    a, b = load_file(plain / "learned_embeds.safetensors"), load_file(saving / "learned_embeds.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    after = _state(tiny_pipe.unet, tiny_pipe.vae, tiny_pipe.text_encoder)
    assert _same(before[:2], after[:2])


def test_mixed_precision_run_trains_fp32_parameters_beside_half_frozen_weights(tiny_pipe, tmp_path):
    before = _state(tiny_pipe.unet, tiny_pipe.vae)
    seen = Inspect(tiny_pipe)
    out = _ti(tiny_pipe, tmp_path / "bf16", memory="12", mixed_precision="bf16", callbacks=[seen])
    assert seen.seen["frozen_dtypes"] == {torch.bfloat16} and seen.seen["vae_dtypes"] == {torch.bfloat16}
    assert seen.seen["trainable_dtypes"] == {torch.float32}
    embeds = load_file(out / "learned_embeds.safetensors")
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in embeds.values())
    assert _same(before, _state(tiny_pipe.unet, tiny_pipe.vae))


def test_a_pipeline_loaded_in_half_precision_trains_fp32_adapters_and_is_left_as_it_was(
    tiny_sd_dir, tmp_path
):
    write_control_pairs(tmp_path / "pairs", [Scene("circle", "red", background="grey")] * 2)
    pipe = diffusion.load_pipeline(tiny_sd_dir, torch_dtype=torch.bfloat16, disable_progress_bar=True)
    before = _state(pipe.unet, pipe.vae, pipe.text_encoder)
    run = dict(
        steps=1, batch_size=2, mixed_precision="bf16", preview_every=1, preview_steps=1, progress=False
    )
    svdiff = diffusion.personalize(pipe, concept_images(2), method="svdiff", token="<h>", output_dir=tmp_path / "s",
                                   **run)  # fmt: skip
    controlnet = diffusion.train_control(pipe, tmp_path / "pairs", output_dir=tmp_path / "c", **run)
    for file in (
        svdiff / "unet" / "adapter_model.safetensors",
        controlnet / "diffusion_pytorch_model.safetensors",
    ):
        weights = load_file(file)  # trained in fp32 (as diffusers' cast_training_params), norm shifts too
        assert {v.dtype for v in weights.values()} == {torch.float32}
        assert all(torch.isfinite(v).all() for v in weights.values())
    assert _same(before, _state(pipe.unet, pipe.vae, pipe.text_encoder))
    assert {p.dtype for m in (pipe.unet, pipe.vae, pipe.text_encoder) for p in m.parameters()} == {
        torch.bfloat16
    }

    half = diffusion.load_pipeline(tiny_sd_dir, torch_dtype=torch.float16, disable_progress_bar=True)
    refused = r"loaded in torch.float16 but mixed_precision='no' trains in float32: load it in float32"
    with pytest.raises(ValueError, match=refused):
        diffusion.personalize(
            half, concept_images(1), token="<h>", mixed_precision="no", output_dir=tmp_path / "x"
        )
    with pytest.raises(ValueError, match=refused):
        diffusion.train_control(half, tmp_path / "pairs", mixed_precision="no", output_dir=tmp_path / "y")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()  # refused before any work


def test_controlnet_with_the_memory_options_trains_what_it_does_without(tiny_pipe, tmp_path):
    write_control_pairs(tmp_path / "pairs", [Scene("circle", "red", background="grey")] * 2)

    def run(name, memory, **kw):
        return diffusion.train_control(
            tiny_pipe, tmp_path / "pairs", method="controlnet", steps=2, batch_size=2, progress=False,
            output_dir=tmp_path / name, memory=memory, config={"lr": 1e-2}, **kw,
        )  # fmt: skip

    plain = load_file(run("plain", "none") / "diffusion_pytorch_model.safetensors")
    seen = Inspect(tiny_pipe)
    saving = load_file(run("saving", "12", callbacks=[seen]) / "diffusion_pytorch_model.safetensors")
    assert seen.seen["checkpointing"]
    assert plain.keys() == saving.keys()
    assert all(torch.allclose(plain[k], saving[k], atol=1e-6) for k in plain)
    with pytest.raises(ValueError, match="gpu_memory='7'"):
        run("bad", "7")


def test_checkpointing_skips_a_control_that_has_none(tiny_pipe):
    from diffusers import T2IAdapter

    adapter = T2IAdapter(3, [32, 64], 1, 8, "full_adapter")  # diffusers' T2I-Adapter has no checkpointing
    with gradient_checkpointing([tiny_pipe.unet, adapter, None]):
        assert tiny_pipe.unet.is_gradient_checkpointing
    assert not tiny_pipe.unet.is_gradient_checkpointing
