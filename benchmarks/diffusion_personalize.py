"""Personalization costs: trainable parameters and step time of every method against full UNet fine-tuning
(DreamBooth), TI step time against the full-table approach, memory.

    python benchmarks/diffusion_personalize.py [--steps 6] [--rounds 3]

1. Trainable parameters of Textual Inversion (dim × vectors) and SVDiff (one per singular value, plus the norm
   weights) on `studio/shapes-sd` and on the SD 1.5 UNet / text-encoder architecture (built on the meta device
   from its config: nothing is downloaded or allocated).
2. Every registered personalization method with its default config: trainable parameters on both models, as
   a fraction of full UNet fine-tuning (DreamBooth), and the step time of the UNet side on `studio/shapes-sd`
   (forward, backward, AdamW) as a ratio to full fine-tuning, interleaved in the same run.
3. Step time of our Textual Inversion (only the new rows are parameters) against the diffusers example's
   approach (the whole embedding table requires grad, AdamW over it, other rows restored after each step),
   measured in the same run, interleaved, medians of `--rounds`: the full step on `studio/shapes-sd`, and the
   text side of a step on the SD 1.5 text encoder (random init; the UNet part is identical for both approaches).
4. Memory the approaches add: gradient + AdamW state + the diffusers example's copy of the table (exact counts).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from diffusers import UNet2DConditionModel  # noqa: E402

import diffusion  # noqa: E402
from diffusion.architecture import SD  # noqa: E402
from diffusion.svdiff.layer import NORM_TYPES  # noqa: E402
from diffusion.textual_inversion import TextualInversionConfig  # noqa: E402
from diffusion.unload import remove_adapter, requires_grad_flags  # noqa: E402
from studio.core import get_method, inject, list_methods  # noqa: E402

SD15_UNET = dict(
    sample_size=64, cross_attention_dim=768, attention_head_dim=8, block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, layers_per_block=2,
)  # fmt: skip
SD15_TEXT = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                 num_attention_heads=12, max_position_embeddings=77)  # fmt: skip


def svdiff_counts(model: nn.Module) -> tuple[int, int]:
    """(singular values, norm weights) SVDiff would train, from shapes only (works on the meta device)."""
    singular = norms = 0
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            singular += min(module.weight.shape[0], module.weight[0].numel())
        elif isinstance(module, NORM_TYPES) and getattr(module, "weight", None) is not None:
            norms += module.weight.numel()
    return singular, norms


def parameter_table(pipe) -> None:
    with torch.device("meta"):
        unet15, text15 = UNet2DConditionModel(**SD15_UNET), CLIPTextModel(CLIPTextConfig(**SD15_TEXT))
    print("| model | TI (1 / 4 vectors) | SVDiff UNet σ + norms | SVDiff text σ + norms | base UNet params |")
    print("|---|---|---|---|---|")
    for name, unet, text in (
        ("studio/shapes-sd", pipe.unet, pipe.text_encoder),
        ("SD 1.5 arch", unet15, text15),
    ):
        dim = text.config.hidden_size
        (us, un), (ts, tn) = svdiff_counts(unet), svdiff_counts(text)
        total = sum(p.numel() for p in unet.parameters())
        print(f"| {name} | {dim:,} / {4 * dim:,} | {us:,} + {un:,} | {ts:,} + {tn:,} | {total:,} |")


def method_parameters(method: str, unet: nn.Module, text: nn.Module) -> int:
    """Parameters `method` trains with its default config (the UNet part injected into a copy, on the meta
    device, so nothing is allocated; SVDiff counted from shapes, since its injection computes SVDs)."""
    if method == "svdiff":
        return sum(svdiff_counts(unet))
    entry = get_method(method, "diffusion")
    token_rows = text.config.hidden_size if method in ("textual_inversion", "custom_diffusion") else 0
    if method == "textual_inversion":
        return token_rows
    model = copy.deepcopy(unet)
    with torch.device("meta"):
        inject(model, entry.config_cls())
    return token_rows + sum(p.numel() for p in model.parameters() if p.requires_grad)


def methods_table(pipe, steps: int, rounds: int, batch: int) -> None:
    """Trainable parameters of every personalization method and its UNet step time against full fine-tuning."""
    with torch.device("meta"):
        unet15, text15 = UNet2DConditionModel(**SD15_UNET), CLIPTextModel(CLIPTextConfig(**SD15_TEXT))
    names = [m.name for m in list_methods("diffusion", "personalize")]
    times = unet_step_times(pipe, [n for n in names if n != "textual_inversion"], steps, rounds, batch)
    full = {
        name: sum(p.numel() for p in u.parameters()) for name, u in (("ours", pipe.unet), ("sd15", unet15))
    }
    print("\n| method | trainable (shapes-sd) | trainable (SD 1.5 arch) | DreamBooth / method (SD 1.5) | "
          "UNet step time / full fine-tune (shapes-sd) |")  # fmt: skip
    print("|---|---|---|---|---|")
    rows = [("full UNet (DreamBooth)", full["ours"], full["sd15"], times.get("full"))]
    rows += [(n, method_parameters(n, pipe.unet, pipe.text_encoder), method_parameters(n, unet15, text15),
              times.get(n)) for n in names]  # fmt: skip
    for name, ours, sd15, t in rows:
        ratio = "—" if t is None else f"{t / times['full']:.2f}"
        print(f"| {name} | {ours:,} | {sd15:,} | {full['sd15'] / sd15:,.0f}× | {ratio} |")


def unet_step_times(pipe, methods: list[str], steps: int, rounds: int, batch: int) -> dict[str, float]:
    """Median seconds of a UNet training step (denoising loss, backward, AdamW) per method and for full
    fine-tuning, rounds interleaved so machine load affects all alike."""
    size = pipe.unet.config.sample_size
    latents, timesteps = torch.randn(batch, 4, size, size), torch.randint(0, 1000, (batch,))
    text = torch.randn(batch, 8, pipe.unet.config.cross_attention_dim)
    times: dict[str, list[float]] = {name: [] for name in ["full", *methods]}
    for _ in range(rounds):
        for name in times:
            unet = copy.deepcopy(pipe.unet).requires_grad_(True)
            if name != "full":
                inject(unet, get_method(name, "diffusion").config_cls())
            optimizer = torch.optim.AdamW([p for p in unet.parameters() if p.requires_grad], lr=1e-6)
            start = time.perf_counter()
            for _ in range(steps):
                unet(latents, timesteps, encoder_hidden_states=text).sample.square().mean().backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            times[name].append((time.perf_counter() - start) / steps)
    return {name: statistics.median(values) for name, values in times.items()}


def full_table_step(text_encoder, ids, new_ids, optimizer, original, unet_loss):
    """The diffusers example: gradient for the whole table, AdamW over it, then restore every other row."""
    loss = unet_loss(SD.encode([text_encoder], [ids]).hidden)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        keep = torch.ones(original.shape[0], dtype=torch.bool)
        keep[new_ids] = False
        text_encoder.get_input_embeddings().weight[keep] = original[keep]


def ours_step(text_encoder, ids, optimizer, unet_loss):
    loss = unet_loss(SD.encode([text_encoder], [ids]).hidden)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def prompt_ids(text_encoder, batch: int, length: int = 16) -> torch.Tensor:
    """Random prompts of existing tokens with the new token (id = table size) at position 3."""
    vocab = text_encoder.get_input_embeddings().weight.shape[0]
    ids = torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(0))
    ids[:, 3] = vocab
    return ids


def time_pair(text_encoder, unet_loss, steps: int, rounds: int, batch: int) -> dict[str, float]:
    """Median seconds per step of both approaches, interleaved rounds on the same text encoder."""
    ids = prompt_ids(text_encoder, batch)
    vocab = text_encoder.get_input_embeddings().weight.shape[0]
    times = {"ours": [], "full_table": []}
    for _ in range(rounds):
        flags = requires_grad_flags(text_encoder)
        inject(text_encoder, TextualInversionConfig(token="<bench>"))  # new rows start at the table size
        opt = torch.optim.AdamW([text_encoder.get_input_embeddings().new_embeddings], lr=1e-3)
        start = time.perf_counter()
        for _ in range(steps):
            ours_step(text_encoder, ids, opt, unet_loss)
        times["ours"].append((time.perf_counter() - start) / steps)
        remove_adapter(text_encoder, flags)

        text_encoder.resize_token_embeddings(vocab + 1, mean_resizing=False)
        table = text_encoder.get_input_embeddings().weight
        text_encoder.requires_grad_(False)
        table.requires_grad_(True)
        original = table.detach().clone()
        opt = torch.optim.AdamW([table], lr=1e-3)
        start = time.perf_counter()
        for _ in range(steps):
            full_table_step(text_encoder, ids, [vocab], opt, original, unet_loss)
        times["full_table"].append((time.perf_counter() - start) / steps)
        text_encoder.resize_token_embeddings(vocab)
        text_encoder.requires_grad_(True)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)
    pipe = diffusion.load_pipeline("studio/shapes-sd", disable_progress_bar=True)
    parameter_table(pipe)
    methods_table(pipe, args.steps, args.rounds, args.batch)

    latents = torch.randn(args.batch, 4, pipe.unet.config.sample_size, pipe.unet.config.sample_size)
    timesteps = torch.randint(0, 1000, (args.batch,))

    def unet_loss(embeddings):
        return pipe.unet(latents, timesteps, encoder_hidden_states=embeddings).sample.square().mean()

    pipe.unet.requires_grad_(False)
    rows = [("studio/shapes-sd, full step", time_pair(pipe.text_encoder, unet_loss, args.steps, args.rounds,
                                                         args.batch), pipe.text_encoder)]  # fmt: skip
    text15 = CLIPTextModel(CLIPTextConfig(**SD15_TEXT))
    rows.append(("SD 1.5 text encoder, text side", time_pair(text15, lambda e: e.square().mean(), args.steps,
                                                             args.rounds, args.batch), text15))  # fmt: skip
    print(
        "\n| setting | ours ms | full-table ms | ours / full | added memory ours | added memory full-table |"
    )
    print("|---|---|---|---|---|---|")
    for name, t, encoder in rows:
        vocab, dim = encoder.get_input_embeddings().weight.shape
        ours_mb = 3 * dim * 4 / 2**20  # the row, its gradient... counted as grad + 2 AdamW moments
        full_mb = 4 * vocab * dim * 4 / 2**20  # gradient + 2 AdamW moments + the restore copy of the table
        print(f"| {name} | {t['ours'] * 1e3:.0f} | {t['full_table'] * 1e3:.0f} | "
              f"{t['ours'] / t['full_table']:.2f} | {ours_mb:.3f} MiB | {full_mb:.1f} MiB |")  # fmt: skip


if __name__ == "__main__":
    main()
