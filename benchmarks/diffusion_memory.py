"""Training memory of one step of every diffusion method on the real SD 1.5 (512 px) and SDXL (1024 px)
architectures, batch 1, without and with the memory options (`diffusion.memory`), beside the targets.

    python benchmarks/diffusion_memory.py            # about a minute on two CPU cores; nothing is downloaded

Every model is built from its architecture's config on the meta device: shapes and dtypes without storage, so
the full-size models cost no memory and no compute. The terms of a step:

- weights: the parameters resident on the GPU. Without the options every model is there in fp32; with them
  the frozen ones are in fp16 and the VAE and the text encoders whose outputs are cached are in host memory
  (a text encoder the gradient passes through, as in Textual Inversion, stays).
- gradients: fp32, one per trainable parameter.
- optimizer: AdamW's two fp32 moments (8 B per parameter); with the options bitsandbytes' 8-bit AdamW (2 B per
  parameter, plus a 4-byte scale per 256-value block and moment, for tensors of at least 4096 values; smaller
  ones stay 8 B).
- activations: the tensors autograd saves for backward during the real forward pass of the method (the same
  count as `benchmarks/measure.py`, on meta tensors), in fp32 without the options, and with them in fp16 with
  gradient checkpointing of the UNet, the control (diffusers' T2I-Adapter has none) and a text encoder in the
  backward path. Checkpointing
  recomputes one block at a time in backward; that block's activations come on top on a GPU and are not in
  this count.

Both architectures' rows build the pieces directly (SDXL: UNet with its micro-conditioning, both text encoders,
ControlNet `from_unet`, T2I-Adapter `full_adapter_xl`, IP-Adapter projecting to 2048 channels) and call them as
the trainers (and diffusers' SDXL training examples) do.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, T2IAdapter, UNet2DConditionModel
from diffusers.utils import logging as diffusers_logging
from measure import saved_for_backward  # benchmarks/measure.py, beside this script
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import diffusion  # noqa: E402,F401  (registers the methods)
from diffusion import ip_adapter  # noqa: E402
from diffusion.controlnet import ControlNetConfig, build_controlnet  # noqa: E402
from diffusion.memory import gradient_checkpointing  # noqa: E402
from diffusion.svdiff import model as svdiff_model  # noqa: E402
from studio.core import inject, list_methods  # noqa: E402

GIB = 2**30
SD15_UNET = dict(
    sample_size=64, cross_attention_dim=768, attention_head_dim=8, block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, layers_per_block=2,
)  # fmt: skip
SDXL_UNET = dict(
    sample_size=128, cross_attention_dim=2048, attention_head_dim=(5, 10, 20), block_out_channels=(320, 640, 1280),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"), layers_per_block=2,
    transformer_layers_per_block=(1, 2, 10), use_linear_projection=True, addition_embed_type="text_time",
    addition_time_embed_dim=256, projection_class_embeddings_input_dim=2816,
)  # fmt: skip
CLIP_L = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
              num_attention_heads=12, max_position_embeddings=77)  # fmt: skip
CLIP_G = dict(vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
              num_attention_heads=20, max_position_embeddings=77, projection_dim=1280, hidden_act="gelu")  # fmt: skip
VAE = dict(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
           block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4)  # fmt: skip
# Targets (GiB, all options on) and the diffusers ControlNet example's documented SD 1.5 figures.
TARGETS = {
    ("SD 1.5", "controlnet"): 12, ("SD 1.5", "t2i_adapter"): 8, ("SD 1.5", "ip_adapter"): 10,
    ("SD 1.5", "textual_inversion"): 6, ("SD 1.5", "svdiff"): 8, ("SDXL", "textual_inversion"): 16,
    ("SDXL", "controlnet"): 24,
}  # fmt: skip
ANCHORS = "diffusers' ControlNet example, SD 1.5: 16 GB with checkpointing + 8-bit Adam, 12 GB adding SDPA + set_to_none"


@dataclass
class Terms:
    """Bytes of one step, by term."""

    weights: int
    gradients: int
    optimizer: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations


@dataclass
class Models:
    """One architecture's models on the meta device, and how the UNet is called."""

    name: str
    unet: nn.Module
    encoders: list[nn.Module]
    vae: nn.Module
    latent: int

    def unet_kwargs(self, batch: int, dtype: torch.dtype) -> dict:
        """The UNet call's SDXL micro-conditioning (pooled text, original size, crop, target size)."""
        if self.unet.config.addition_embed_type != "text_time":
            return {}
        text = torch.zeros(batch, 1280, device="meta", dtype=dtype)
        return {"added_cond_kwargs": {"text_embeds": text, "time_ids": torch.zeros(batch, 6, device="meta")}}


def build(arch: str) -> Models:
    """The architecture's UNet, text encoders and VAE on the meta device, frozen."""
    with init_empty_weights():
        if arch == "SD 1.5":
            models = Models(arch, UNet2DConditionModel(**SD15_UNET), [CLIPTextModel(CLIPTextConfig(**CLIP_L))],
                            AutoencoderKL(**VAE), 64)  # fmt: skip
        else:
            encoders = [
                CLIPTextModel(CLIPTextConfig(**CLIP_L)),
                CLIPTextModelWithProjection(CLIPTextConfig(**CLIP_G)),
            ]
            models = Models(arch, UNet2DConditionModel(**SDXL_UNET), encoders, AutoencoderKL(**VAE), 128)
    for module in (models.unet, *models.encoders, models.vae):
        module.requires_grad_(False)
    return models


def text_states(models: Models, batch: int) -> torch.Tensor:
    """The prompt embeddings the UNet reads, through the text encoders (SDXL: both, penultimate layers)."""
    ids = torch.zeros(batch, 77, dtype=torch.long, device="meta")
    if len(models.encoders) == 1:
        return models.encoders[0](ids)[0]
    states = [encoder(ids, output_hidden_states=True).hidden_states[-2] for encoder in models.encoders]
    return torch.cat(states, dim=-1)


def meta_svd(weights: dict[str, torch.Tensor], cache_dir=None) -> dict[str, tuple[torch.Tensor, ...]]:
    """`svdiff.model.svd_factors` on the meta device: the thin SVD's shapes, with no decomposition run."""
    factors = {}
    for name, weight in weights.items():
        rows, cols = weight.shape[0], weight[0].numel()
        k = min(rows, cols)
        factors[name] = tuple(torch.empty(shape, device="meta") for shape in ((rows, k), (k,), (k, cols)))
    return factors


def install(models: Models, method: str) -> tuple[nn.Module | None, bool]:
    """Put `method`'s trainable parts in place: `(a control network beside the UNet or None, whether the
    gradient passes through the text encoders)`."""
    svdiff_model.svd_factors = meta_svd
    with torch.device("meta"):  # new parameters, too, get shapes only
        return _install(models, method)


def _install(models: Models, method: str) -> tuple[nn.Module | None, bool]:
    entry = next(m for m in list_methods("diffusion") if m.name == method)
    if entry.task == "personalize":
        config = entry.config_cls()
        if method == "textual_inversion":
            for encoder in models.encoders:
                inject(encoder, config)
            return None, True
        inject(models.unet, config)
        return None, False
    if method == "controlnet":
        return build_controlnet(models.unet, ControlNetConfig(), 8), False
    if method == "t2i_adapter":
        xl = models.name == "SDXL"
        adapter_type, channels = (
            ("full_adapter_xl", [320, 640, 1280]) if xl else ("full_adapter", [320, 640, 1280, 1280])
        )
        return T2IAdapter(3, channels, 2, 16 if xl else 8, adapter_type), False
    components = {"unet": models.unet, "vae": models.vae, "text_encoder": models.encoders[0]}
    pipe = type("Pipe", (), {"unet": models.unet, "components": components})()
    ip_adapter.install(pipe, [ip_adapter.initial_state_dict(models.unet, 1024)])
    for p in ip_adapter.ip_parameters(models.unet):
        p.requires_grad_(True)
    return None, False


def forward(models: Models, method: str, control: nn.Module | None, live_text: bool, dtype: torch.dtype):
    """`() -> loss` of one batch-1 step of `method` at the architecture's resolution."""
    side = models.latent
    noisy = torch.zeros(1, 4, side, side, device="meta", dtype=dtype)
    t = torch.zeros(1, dtype=torch.long, device="meta")
    width = models.unet.config.cross_attention_dim
    kwargs = models.unet_kwargs(1, dtype)

    def loss() -> torch.Tensor:
        text = text_states(models, 1) if live_text else torch.zeros(1, 77, width, device="meta", dtype=dtype)
        extra = dict(kwargs)
        if method == "controlnet":
            condition = torch.zeros(1, 3, side * 8, side * 8, device="meta", dtype=dtype)
            down, mid = control(noisy, t, text, condition, return_dict=False, **kwargs)
            extra.update(down_block_additional_residuals=down, mid_block_additional_residual=mid)
        elif method == "t2i_adapter":
            condition = torch.zeros(1, 3, side * 8, side * 8, device="meta", dtype=dtype)
            extra["down_intrablock_additional_residuals"] = control(condition)
        elif method == "ip_adapter":
            embeds = torch.zeros(1, 1, 1024, device="meta", dtype=dtype)
            extra["added_cond_kwargs"] = {**kwargs.get("added_cond_kwargs", {}), "image_embeds": [embeds]}
        return models.unet(noisy, t, encoder_hidden_states=text, **extra).sample.float().square().mean()

    return loss


def optimizer_bytes(params: list[nn.Parameter], eight_bit: bool) -> int:
    """AdamW's state: two fp32 moments, or bitsandbytes' 8-bit ones (see the module docstring)."""
    if not eight_bit:
        return sum(8 * p.numel() for p in params)
    return sum(
        2 * p.numel() + 8 * -(-p.numel() // 256) if p.numel() >= 4096 else 8 * p.numel() for p in params
    )


def measure(arch: str, method: str, options: bool) -> Terms:
    """The terms of one step of `method` on `arch`, without or with the memory options."""
    models = build(arch)
    control, live_text = install(models, method)
    modules = [models.unet, *([control] if control is not None else [])]
    trainable = [p for m in (*modules, *models.encoders) for p in m.parameters() if p.requires_grad]
    resident = [*modules, *models.encoders, models.vae]
    if options:
        resident = [
            *modules,
            *(models.encoders if live_text else []),
        ]  # the VAE and cached encoders offloaded
    seen, weights = set(), 0
    for module in resident:
        for p in module.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                weights += p.numel() * (4 if p.requires_grad or not options else 2)
    dtype = torch.float16 if options else torch.float32
    everything = nn.ModuleList([*modules, *models.encoders])
    if options:
        everything.to(dtype)
    backward = [*modules, *(models.encoders if live_text else [])]
    with gradient_checkpointing(backward, on=options):
        _, activations = saved_for_backward(everything, forward(models, method, control, live_text, dtype))
    gradients = sum(4 * p.numel() for p in trainable)
    return Terms(weights, gradients, optimizer_bytes(trainable, options), activations)


def gib(n: int) -> str:
    return f"{n / GIB:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="*", default=["SD 1.5", "SDXL"], choices=["SD 1.5", "SDXL"])
    parser.add_argument(
        "--method", nargs="*", default=None, help="default: every registered diffusion method"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' checkpointing renames
    diffusers_logging.set_verbosity_error()  # casting meta models to fp16 is what is meant here
    methods = args.method or [m.name for m in list_methods("diffusion")]
    print(
        "GiB per step, batch 1 (weights + gradients + optimizer + activations); 'on' = all memory options\n"
    )
    print("| architecture | method | off: total | on: weights | on: grads | on: optimizer | on: activations "
          "| on: total | target |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for arch in args.arch:
        for method in methods:
            off, on = measure(arch, method, False), measure(arch, method, True)
            target = TARGETS.get((arch, method))
            verdict = "–" if target is None else f"≤ {target} {'✓' if on.total <= target * GIB else '✗'}"
            print(f"| {arch} | {method} | {gib(off.total)} | {gib(on.weights)} | {gib(on.gradients)} | "
                  f"{gib(on.optimizer)} | {gib(on.activations)} | {gib(on.total)} | {verdict} |")  # fmt: skip
    print(f"\nAnchor: {ANCHORS}.")


if __name__ == "__main__":
    main()
