"""Cost of the control methods: trainable parameters at SD 1.5 scale, and step time and training memory on a
small pipeline, as ratios to fine-tuning the whole UNet measured in the same run.

Parameters are counted on the SD 1.5 UNet architecture built from its config on the meta device (nothing is
downloaded or allocated) and printed beside the papers' numbers. Step times are interleaved round by round
over the methods (so load on the machine affects them alike); the table shows medians. Training memory is what
a step adds to the weights: on CUDA the peak allocated during the step; on CPU, exactly, the tensors autograd
saves for backward plus gradients and optimizer state.

    python benchmarks/diffusion_control.py                  # studio/shapes-sd, batch 4, CPU
    python benchmarks/diffusion_control.py --rounds 10 --batch 8
"""

from __future__ import annotations

import argparse
import statistics
import time

import diffusers
import torch
from accelerate import init_empty_weights
from diffusers import ControlNetModel, UNet2DConditionModel
from measure import step_memory  # benchmarks/measure.py, beside this script

import diffusion
from diffusion import ip_adapter
from diffusion.control import control_method
from diffusion.control.train import ControlledUNet
from diffusion.controlnet import ControlNetConfig, build_controlnet
from diffusion.denoise import denoising_loss, training_scheduler
from diffusion.t2i_adapter import T2IAdapterConfig, build_t2i_adapter

SD15_UNET = {
    "sample_size": 64,
    "block_out_channels": [320, 640, 1280, 1280],
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    "layers_per_block": 2,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
}
PAPERS = {"controlnet": "361M", "t2i_adapter (full)": "77M", "t2i_adapter (light)": "–", "ip_adapter": "22M"}
METHODS = ["full_unet", "controlnet", "t2i_adapter", "ip_adapter"]


def count(params) -> int:
    """Number of elements of the parameters (or tensors) given."""
    return sum(p.numel() for p in params)


def sd15_counts(clip_dim: int = 1024) -> dict[str, int]:
    """Trainable parameters of each control method on the SD 1.5 UNet (meta device).

    Args:
        clip_dim: image-embedding width of the IP-Adapter's encoder (1024: OpenCLIP ViT-H/14, the authors').
    """
    with init_empty_weights():
        unet = UNet2DConditionModel(**SD15_UNET)
        controlnet = ControlNetModel.from_unet(unet, load_weights_from_unet=False)
        full = build_t2i_adapter(unet, T2IAdapterConfig(adapter_type="full_adapter"), 8)
        light = build_t2i_adapter(unet, T2IAdapterConfig(adapter_type="light_adapter"), 8)
    ip = ip_adapter.initial_state_dict(unet, clip_dim)
    return {
        "controlnet": count(controlnet.parameters()),
        "t2i_adapter (full)": count(full.parameters()),
        "t2i_adapter (light)": count(light.parameters()),
        "ip_adapter": count(ip["image_proj"].values()) + count(ip["ip_adapter"].values()),
    }


class Stepper:
    """One method on the pipeline's UNet with AdamW and a fixed batch; `step()` is one optimizer step."""

    def __init__(self, pipe, method: str, batch: int, device: str) -> None:
        torch.manual_seed(0)
        unet = pipe.unet
        unet.requires_grad_(method == "full_unet")
        control = None
        if method == "controlnet":
            control = build_controlnet(unet, ControlNetConfig(), pipe.vae_scale_factor)
        elif method == "t2i_adapter":
            control = build_t2i_adapter(unet, T2IAdapterConfig(), pipe.vae_scale_factor)
        elif method == "ip_adapter":
            ip_adapter.install(pipe, [ip_adapter.initial_state_dict(unet, 64)])
            for p in ip_adapter.ip_parameters(unet):
                p.requires_grad_(True)
        # Full fine-tuning calls the plain UNet (see `loss`); any method's residuals fill the wrapper.
        residuals = control_method("ip_adapter" if method == "full_unet" else method).spec.residuals
        self.model = ControlledUNet(unet, residuals, control).to(device)
        self.method = method
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=1e-5)
        side, pixels = unet.config.sample_size, unet.config.sample_size * pipe.vae_scale_factor
        self.latents = torch.randn(batch, 4, side, side, device=device)
        self.text = torch.randn(batch, 77, unet.config.cross_attention_dim, device=device)
        self.condition = torch.rand(batch, 3, pixels, pixels, device=device)
        self.embeds = torch.randn(batch, 64, device=device) if method == "ip_adapter" else None
        self.scheduler = training_scheduler(pipe)

    def loss(self) -> torch.Tensor:
        """The denoising loss of the fixed batch (full fine-tuning runs the plain UNet)."""
        if self.method == "full_unet":
            predict = lambda x, t: self.model.unet(x, t, encoder_hidden_states=self.text).sample  # noqa: E731
        else:
            text = {"encoder_hidden_states": self.text}
            predict = lambda x, t: self.model(x, t, text, self.condition, self.embeds)  # noqa: E731
        return denoising_loss(predict, self.latents, self.scheduler)

    def step(self) -> None:
        """One optimizer step."""
        self.loss().backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def memory(self) -> int:
        """Bytes a training step holds beyond the weights (see the module docstring)."""
        return step_memory(self.model, self.params, self.optimizer, self.loss, self.latents.is_cuda)


def main() -> None:
    """Measure and print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="studio/shapes-sd")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    diffusers.utils.logging.disable_progress_bar()

    print("Trainable parameters on the SD 1.5 UNet architecture (random init on the meta device)")
    print(f"{'method':<22}{'ours':>14}{'paper':>8}")
    for name, n in sd15_counts().items():
        print(f"{name:<22}{n:>14,}{PAPERS[name]:>8}")

    steppers, memory = {}, {}
    for method in METHODS:  # one pipeline each: methods change the UNet they train on
        pipe = diffusion.load_pipeline(args.pipeline, disable_progress_bar=True)
        steppers[method] = Stepper(pipe, method, args.batch, args.device)
        memory[method] = steppers[method].memory()  # also the warm-up step
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    for _ in range(args.rounds):
        for method, stepper in steppers.items():
            start = time.perf_counter()
            stepper.step()
            times[method].append(time.perf_counter() - start)
    step = {m: statistics.median(t) for m, t in times.items()}

    print(f"\n{args.pipeline}, batch {args.batch} on {args.device} ({torch.get_num_threads()} threads), "
          f"medians of {args.rounds} interleaved rounds; ratios to fine-tuning the whole UNet")  # fmt: skip
    print(
        f"{'method':<14}{'trainable':>12}{'step ms':>10}{'step/full':>11}{'memory MiB':>12}{'memory/full':>13}"
    )
    for m in METHODS:
        print(
            f"{m:<14}{count(steppers[m].params):>12,}{step[m] * 1e3:>10.1f}"
            f"{step[m] / step['full_unet']:>11.2f}{memory[m] / 2**20:>12.1f}{memory[m] / memory['full_unet']:>13.2f}"
        )


if __name__ == "__main__":
    main()
