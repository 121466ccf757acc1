"""Recipe of `studio/shapes-sd`: a tiny Stable-Diffusion-format text-to-image model of the shape world.

    python assets/recipes/shapes_sd.py [--out assets/shapes-sd] [--device cpu]

Stage 1 trains an `AutoencoderKL` (64×64 RGB -> 16×16×4 latents, reconstruction + KL) on random crops;
stage 2 encodes the training images once, then trains a `UNet2DConditionModel` and a `CLIPTextModel` (from
scratch, with a tokenizer built from the world's caption words) jointly with the epsilon-prediction loss
(min-SNR-5 weighted, logit-normal timesteps, EMA weights kept) and 10% empty captions for classifier-free
guidance. The VAE is the ceiling of prompt following: `--progress-every N` prints how often the reference
ViT still names shape and colour after a VAE round trip (0.59 after 800 steps on 24-px crops, 0.87–0.91 after
3,000 on 32-px crops), then a 4-seed prompt-following check every N UNet steps. Only pretraining scenes are
drawn (held-out shapes never appear). The result is a diffusers folder that
`StableDiffusionPipeline.from_pretrained` loads offline. `--align-weight` (representation alignment to
`studio/shapes-clip`) and `--matmul-attention` (faster on CPUs) are off by default; both change the result.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DDPMScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from diffusers.models.attention_processor import AttnProcessor
from diffusers.training_utils import EMAModel, compute_snr
from tqdm import tqdm
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

# The repository root for `studio`, this folder for the sibling scripts (the recipes are not a package).
sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]
from recipe_command import recipe_command  # noqa: E402
from shapes_tokenizer import (  # noqa: E402
    MAX_LENGTH,
    build_tokenizer,
    caption_words,
    tokenize,
    write_legacy_tokenizer_files,
)

from studio.core import write_json  # noqa: E402
from studio.engine import cosine_decay  # noqa: E402
from studio.world import render, sample_scenes  # noqa: E402

MIN_SNR_GAMMA = 5.0
SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")


def build_models(tokenizer: CLIPTokenizer) -> tuple[AutoencoderKL, CLIPTextModel, UNet2DConditionModel]:
    """Tiny VAE, text encoder and UNet with Stable Diffusion's architecture."""
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(16, 32, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=64,
        mid_block_add_attention=False,
    )
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=MAX_LENGTH,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        # Cross-attention only at 8×8 and in the mid block: self-attention over 16×16 tokens would triple the
        # step time on a CPU, and one centred object needs no fine-grained text-to-pixel binding.
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(64, 64),
        layers_per_block=1,
        cross_attention_dim=text_config.hidden_size,
        # The pooled prompt also joins the time embedding, so every ResNet block sees colour and shape;
        # cross-attention alone learns that binding far too slowly for a CPU budget.
        addition_embed_type="text",
        addition_embed_type_num_heads=4,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    return vae, CLIPTextModel(text_config), unet


def make_dataset(n: int, seed: int) -> tuple[torch.Tensor, list[list[str]]]:
    """`n` pretraining images in [-1, 1] and, per image, its caption variants (short, detailed, bare)."""
    seeds = np.random.SeedSequence(seed).generate_state(n + 1).tolist()
    scenes = sample_scenes(n, seeds[0], "pretrain")
    images = np.stack([np.asarray(render(s, 64, r)) for s, r in zip(scenes, seeds[1:], strict=True)])
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    captions = [[s.caption("short"), s.caption("detailed"), f"a {s.colour} {s.shape}"] for s in scenes]
    return pixels, captions


def cosine_lr(
    optimizer: torch.optim.Optimizer, steps: int, warmup: int = 50
) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        return min(1.0, (step + 1) / warmup) * cosine_decay(step / steps)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_vae(
    vae: AutoencoderKL, pixels: torch.Tensor, steps: int, batch: int, crop: int, device: str
) -> float:
    """Reconstruction (MSE) + a small KL term, on random crops: the VAE is convolutional, and crops are cheap."""
    vae.to(device).train()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=2e-3, weight_decay=0.0)
    schedule = cosine_lr(optimizer, steps)
    generator = torch.Generator().manual_seed(1)
    bar = tqdm(range(steps), desc="vae")
    for _ in bar:
        index = torch.randint(len(pixels), (batch,), generator=generator)
        y0, x0 = torch.randint(0, 64 - crop + 1, (2,), generator=generator).tolist()
        x = pixels[index, :, y0 : y0 + crop, x0 : x0 + crop].to(device)
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample()).sample
        rec = F.mse_loss(recon, x)
        kl = posterior.kl().mean() / posterior.mean[0].numel()
        loss = rec + 1e-4 * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.set_postfix(rec=f"{rec.item():.4f}", kl=f"{kl.item():.2f}")
    return rec.item()


@torch.no_grad()
def encode_latents(
    vae: AutoencoderKL, pixels: torch.Tensor, device: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Latent means and stds of every image, once; sets the VAE's `scaling_factor` to 1/std of the latents."""
    vae.eval()
    means, stds = [], []
    for chunk in pixels.split(256):
        dist = vae.encode(chunk.to(device)).latent_dist
        means.append(dist.mean.cpu())
        stds.append(dist.std.cpu())
    mean, std = torch.cat(means), torch.cat(stds)
    vae.register_to_config(scaling_factor=float(1 / mean.std()))
    return mean, std


def train_unet(
    unet: UNet2DConditionModel,
    text_encoder: CLIPTextModel,
    tokens: torch.Tensor,
    latents: tuple[torch.Tensor, torch.Tensor],
    scaling: float,
    steps: int,
    batch: int,
    device: str,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 0,
    timesteps: str = "uniform",
    align: tuple[torch.Tensor, float] | None = None,
    matmul_attention: bool = False,
) -> float:
    """Epsilon prediction on cached latents; captions drawn among each image's variants, 10% empty.

    The loss is weighted by min-SNR-5 (Hang et al. 2023), which converges several times faster than the plain
    epsilon loss, and the weights that are kept are an exponential moving average of the trained ones: both
    matter when a CPU budget allows only a few thousand steps.

    Args:
        tokens: token ids `[n_images, n_variants + 1, MAX_LENGTH]`; the last variant is the empty prompt.
        progress: called with the step number every `progress_every` steps, with the EMA weights swapped in.
        timesteps: how training timesteps are drawn, `"uniform"` or `"logit-normal"` (SD3's density, mean 0,
            std 1: fewer samples at the two ends of the schedule).
        align: `(targets, weight)` for representation alignment (REPA, Yu et al. 2024): a small projector of
            the mid block's output is pulled towards `targets[i]`, a frozen encoder's feature map of image `i`,
            by `weight` × (1 - cosine similarity). The projector is thrown away after training.
        matmul_attention: train with diffusers' plain-matmul `AttnProcessor`: on a CPU it steps in 0.92-0.96x
            the time of PyTorch's fused kernel, which is slow for 8-dim heads. The UNet gets its own
            processors back after training.
    """
    unet.to(device).train()
    text_encoder.to(device).train()
    saved_processors = unet.attn_processors
    if matmul_attention:
        unet.set_attn_processor(AttnProcessor())
    noise_scheduler = DDPMScheduler(**SCHEDULE)
    params = [*unet.parameters(), *text_encoder.parameters()]
    ema = EMAModel(params, decay=0.999, use_ema_warmup=True)
    trained = list(params)
    if align:
        targets, align_weight = align
        projector = torch.nn.Sequential(
            torch.nn.Conv2d(unet.config.block_out_channels[-1], 256, 1),
            torch.nn.SiLU(),
            torch.nn.Conv2d(256, targets.shape[1], 1),
        ).to(device)
        trained += projector.parameters()
        mid: list[torch.Tensor] = []
        hook = unet.mid_block.register_forward_hook(lambda module, args, output: mid.append(output))
    optimizer = torch.optim.AdamW(trained, lr=2e-3, weight_decay=1e-2)
    schedule = cosine_lr(optimizer, steps)
    generator = torch.Generator().manual_seed(2)
    mean, std = latents
    n_variants = tokens.shape[1] - 1
    bar = tqdm(range(1, steps + 1), desc="unet")
    for step in bar:
        index = torch.randint(len(mean), (batch,), generator=generator)
        variant = torch.randint(n_variants, (batch,), generator=generator)
        variant[torch.rand(batch, generator=generator) < 0.1] = n_variants
        ids = tokens[index, variant].to(device)
        z = (mean[index] + std[index] * torch.randn(mean[index].shape, generator=generator)) * scaling
        noise = torch.randn(z.shape, generator=generator)
        t = sample_timesteps(timesteps, batch, noise_scheduler.config.num_train_timesteps, generator)
        noisy = noise_scheduler.add_noise(z, noise, t).to(device)
        prediction = unet(noisy, t.to(device), text_encoder(ids)[0]).sample
        snr = compute_snr(noise_scheduler, t)
        weight = snr.clamp(max=MIN_SNR_GAMMA) / snr
        per_sample = F.mse_loss(prediction, noise.to(device), reduction="none").mean(dim=(1, 2, 3))
        loss = (weight.to(device) * per_sample).mean()
        if align:
            target = targets[index].to(device)
            projected = F.adaptive_avg_pool2d(projector(mid.pop()), target.shape[-2:])
            loss = loss + align_weight * (1 - F.cosine_similarity(projected, target, dim=1)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        schedule.step()
        ema.step(params)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if progress and progress_every and (step % progress_every == 0 or step == steps):
            with _ema_weights(ema, params):
                progress(step)
            if align:
                mid.clear()  # sampling ran the mid block too
    if align:
        hook.remove()
    unet.set_attn_processor(saved_processors)
    ema.copy_to(params)
    return loss.item()


def sample_timesteps(kind: str, n: int, num_train_timesteps: int, generator: torch.Generator) -> torch.Tensor:
    """`n` training timesteps drawn uniformly or from a logit-normal density (Esser et al. 2024)."""
    if kind == "uniform":
        return torch.randint(0, num_train_timesteps, (n,), generator=generator)
    if kind == "logit-normal":
        u = torch.sigmoid(torch.randn(n, generator=generator))
        return (u * num_train_timesteps).long().clamp(max=num_train_timesteps - 1)
    raise ValueError(f"timesteps must be 'uniform' or 'logit-normal', got {kind!r}")


@contextmanager
def _ema_weights(ema: EMAModel, params: list[torch.nn.Parameter]):
    ema.store(params)
    ema.copy_to(params)
    try:
        yield
    finally:
        ema.restore(params)


@torch.no_grad()
def encoder_features(pixels: torch.Tensor, model_name: str = "studio/shapes-clip") -> torch.Tensor:
    """Stage-3 feature maps (stride 16: 4×4 at 64 px) of a bundled CLIP image tower for every image, once.

    The alignment targets come from the CLIP model, not the ViT that judges prompt following, so the judge never
    shapes training.
    """
    import vlm  # only alignment needs the CLIP model

    model, _, _ = vlm.create_clip(model_name)
    mean, std = (torch.tensor(model.visual.preprocess_cfg[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    normalised = ((pixels + 1) / 2 - mean) / std
    maps = [
        model.visual.trunk.forward_intermediates(chunk, indices=[3], intermediates_only=True)[0]
        for chunk in normalised.split(256)
    ]
    return torch.cat(maps)


def build_pipeline(vae, text_encoder, tokenizer, unet) -> StableDiffusionPipeline:
    """The pipeline of the trained parts, with DDIM for sampling (as SD ships PNDM/DDIM configs)."""
    sampler = DDIMScheduler(**SCHEDULE, clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=sampler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def save(out: Path, vae, text_encoder, tokenizer, unet) -> StableDiffusionPipeline:
    """Write the diffusers folder and return the pipeline."""
    pipe = build_pipeline(vae.eval().cpu(), text_encoder.eval().cpu(), tokenizer, unet.eval().cpu())
    pipe.save_pretrained(out, safe_serialization=True)
    write_legacy_tokenizer_files(tokenizer, out / "tokenizer")
    return pipe


def quick_check(step: int, pipe: StableDiffusionPipeline) -> None:
    """Print prompt following with 4 seeds per prompt (the final evaluation uses `--eval-seeds`)."""
    from eval_shapes_sd import evaluate  # sibling script; imported late so training never needs the ViT

    modes = {m: m.training for m in (pipe.unet, pipe.text_encoder)}
    metrics = evaluate(pipe, seeds=4)
    for module, training in modes.items():
        module.train(training)
    tqdm.write(f"step {step}: " + json.dumps({k: round(v, 3) for k, v in metrics.items()}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "shapes-sd")
    parser.add_argument("--device", default="cpu", help="torch device; the recipe is sized for 2 CPU cores")
    parser.add_argument("--images", type=int, default=6000, help="training images")
    parser.add_argument("--vae-steps", type=int, default=3000)
    parser.add_argument("--vae-batch", type=int, default=32)
    parser.add_argument(
        "--reuse-vae",
        type=Path,
        default=None,
        help="a trained VAE folder (e.g. assets/shapes-sd/vae) instead of stage 1, to iterate on stage 2",
    )
    parser.add_argument("--unet-steps", type=int, default=2500)
    parser.add_argument(
        "--progress-every",
        type=int,
        default=0,
        help="quick prompt-following check every N UNet steps; 0: never",
    )
    parser.add_argument("--batch", type=int, default=64, help="UNet batch")
    parser.add_argument(
        "--timesteps",
        choices=("uniform", "logit-normal"),
        default="logit-normal",
        help="training timestep density",
    )
    parser.add_argument(
        "--align-weight",
        type=float,
        default=0.0,
        help="weight of the alignment of the UNet's mid block to studio/shapes-clip's image features (0: off)",
    )
    parser.add_argument(
        "--matmul-attention",
        action="store_true",
        help="train the UNet with plain-matmul attention (faster on CPUs; changes the floats)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--eval-seeds", type=int, default=20, help="seeds per prompt in the final evaluation; 0 skips"
    )
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    metrics: dict[str, float] = {}

    start = time.perf_counter()
    tokenizer = build_tokenizer(caption_words())
    vae, text_encoder, unet = build_models(tokenizer)
    pixels, captions = make_dataset(args.images, args.seed)
    metrics["data_s"] = time.perf_counter() - start

    start = time.perf_counter()
    if args.reuse_vae:
        vae = AutoencoderKL.from_pretrained(args.reuse_vae, local_files_only=True).to(args.device)
    else:
        metrics["vae_mse"] = train_vae(vae, pixels, args.vae_steps, args.vae_batch, 32, args.device)
    latents = encode_latents(vae, pixels, args.device)
    with torch.no_grad():
        full = vae.decode(latents[0][:256].to(args.device)).sample.cpu()
    metrics["vae_mse_full"] = F.mse_loss(full, pixels[:256]).item()
    metrics["vae_s"] = time.perf_counter() - start
    if args.progress_every:
        from eval_shapes_sd import reconstruction_accuracy

        tqdm.write("vae: " + json.dumps(reconstruction_accuracy(vae)))

    start = time.perf_counter()
    scaling = vae.config.scaling_factor
    metrics["unet_loss"] = train_unet(
        unet,
        text_encoder,
        tokenize(tokenizer, captions),
        latents,
        scaling,
        args.unet_steps,
        args.batch,
        args.device,
        progress=lambda step: quick_check(step, build_pipeline(vae, text_encoder, tokenizer, unet)),
        progress_every=args.progress_every,
        timesteps=args.timesteps,
        align=(encoder_features(pixels), args.align_weight) if args.align_weight else None,
        matmul_attention=args.matmul_attention,
    )
    metrics["unet_s"] = time.perf_counter() - start

    pipe = save(args.out, vae, text_encoder, tokenizer, unet)
    metrics["size_mb"] = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file()) / 2**20
    if args.eval_seeds:
        from eval_shapes_sd import evaluate, reconstruction_accuracy  # sibling script; needs the ViT

        start = time.perf_counter()
        metrics.update(evaluate(pipe, seeds=args.eval_seeds))
        metrics.update(reconstruction_accuracy(pipe.vae))
        metrics["eval_s"] = time.perf_counter() - start
    rounded = {k: round(v, 4) for k, v in metrics.items()}
    print(json.dumps(rounded, indent=1))
    write_json(
        args.out / "metrics.json",
        {
            "recipe": recipe_command("shapes_sd.py", argv),
            "seed": args.seed,
            "torch_threads": torch.get_num_threads(),
            "eval_seeds": args.eval_seeds,
            **rounded,
        },
    )


if __name__ == "__main__":
    main()
