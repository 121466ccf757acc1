"""`train_control`: train a ControlNet, T2I-Adapter or IP-Adapter against a frozen pipeline.

Everything frozen is computed once: VAE latents of the images and their mirror images, caption conditioning
(through every text encoder of the architecture: SDXL's two, with the pooled embedding),
condition tensors and (IP-Adapter) image embeddings. The loop is `studio.engine.train`, so checkpoints,
exact resume, callbacks and mixed precision come from there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from studio.engine import Callback, check_count, main_process, train

from ..architecture import Conditioning, architecture_of
from ..artifacts import artifact_metadata, base_model_of, write_artifact_info
from ..denoise import cubic_timesteps, denoising_loss, training_scheduler
from ..images import images_to_tensor, pipeline_resolution
from ..latents import LatentCache, encode_latents
from ..memory import MemoryOptions, check_training_precision, memory_savings
from ..previews import PreviewCallback
from ..unload import frozen
from .config import ControlConfig
from .dataset import read_control_folder
from .preview_sampler import control_sampler
from .spec import ControlSetup, control_method


class ControlledUNet(nn.Module):
    """The frozen UNet with a trainable control: `forward(noisy, t, text, condition, image_embeds)`.

    Args:
        unet: the frozen UNet (with the control installed, for a control that lives in it).
        residuals: the method's `ControlSpec.residuals`, giving the UNet call's control arguments.
        control: the trained network beside the UNet (None for a control that lives in it).
    """

    def __init__(
        self, unet: nn.Module, residuals: Callable[..., dict[str, Any]], control: nn.Module | None
    ) -> None:
        super().__init__()
        self.unet = unet
        self.residuals = residuals
        self.control = control

    def forward(
        self,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
        text: dict[str, Any],
        condition: torch.Tensor | None = None,
        image_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The UNet's prediction with the control applied (by the method's `ControlSpec.residuals`).

        Args:
            noisy: noisy latents `[B, C, h, w]`.
            timesteps: `[B]` timesteps.
            text: the UNet's text keyword arguments (`Architecture.unet_kwargs`: the hidden states, and on
                SDXL the pooled embedding and size ids in `added_cond_kwargs`).
            condition: condition images `[B, C, H, W]` in [0, 1], for condition-guided controls.
            image_embeds: reference image embeddings `[B, E]`, for reference-guided controls.
        """
        kwargs = self.residuals(self.control, noisy, timesteps, text, condition, image_embeds)
        return self.unet(noisy, timesteps, **{**text, **kwargs}).sample


class ControlSamples(Dataset):
    """Training samples from the caches: a fresh latent draw, its caption's conditioning, condition, image
    embedding.

    Entry `i >= n_images` is the mirror image of entry `i - n_images`; its condition is mirrored alike.

    Args:
        latents: the latent cache (with flips or not).
        text: the conditioning of each distinct caption.
        captions: the caption (row of `text`) of each image, `[n_images]`.
        conditions: condition images `[n_images, C, H, W]` in [0, 1], or None.
        image_embeds: image embeddings `[len(latents), E]` (flips included), or None.
    """

    def __init__(
        self,
        latents: LatentCache,
        text: Conditioning,
        captions: torch.Tensor,
        conditions: torch.Tensor | None,
        image_embeds: torch.Tensor | None,
    ) -> None:
        self.latents, self.text, self.captions = latents, text, captions
        self.conditions, self.image_embeds = conditions, image_embeds

    def __len__(self) -> int:
        return len(self.latents)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        source = self.latents.source_index(index)
        caption = int(self.captions[source])
        item = {"latents": self.latents.sample(index), "text": self.text.hidden[caption]}
        if self.text.pooled is not None:
            item["pooled"] = self.text.pooled[caption]
        if self.conditions is not None:
            condition = self.conditions[source]
            item["condition"] = condition.flip(-1) if index >= self.latents.n_images else condition
        if self.image_embeds is not None:
            item["image_embeds"] = self.image_embeds[index]
        return item


def _condition_tensor(images: list) -> torch.Tensor:
    array = np.stack([np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0 for image in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


def train_control(
    pipe: StableDiffusionPipeline | StableDiffusionXLPipeline,
    dataset_dir: str | os.PathLike,
    method: str = "controlnet",
    condition: str | None = None,
    steps: int = 1000,
    output_dir: str | os.PathLike = "runs/control",
    *,
    config: ControlConfig | dict[str, Any] | None = None,
    condition_params: dict[str, Any] | None = None,
    image_encoder: Any = None,
    batch_size: int = 4,
    flip: bool = True,
    checkpoint_every: int | None = None,
    resume: bool | str | os.PathLike = False,
    overwrite: bool = False,
    preview_every: int | None = None,
    preview_steps: int = 20,
    on_preview: Callable[[int, list[Image.Image]], None] | None = None,
    callbacks: list[Callback] | tuple = (),
    mixed_precision: str = "auto",
    memory: MemoryOptions | str | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Path:
    """Train a control method on a folder of images and save it in its stock diffusers format.

    Args:
        pipe: the base pipeline (`diffusion.load_pipeline`: SD 1.x/2.x or SDXL); it is left unchanged. On SDXL
            the UNet (and a ControlNet) also take the pooled caption embedding and the size ids of the training
            resolution, as diffusers' SDXL trainers pass them.
        dataset_dir: images with captions and, for ControlNet/T2I-Adapter, condition images or `condition=`
            (layout: `diffusion.control.dataset`).
        method: a registered control method: `"controlnet"`, `"t2i_adapter"` or `"ip_adapter"`.
        condition: extractor deriving conditions from the images (`"canny"`, `"sketch"`, `"grayscale"`,
            `"mask"`); None reads condition images from the folder. Recorded, so `generate` applies it to a
            photo. Ignored for methods guided by a reference image (IP-Adapter).
        steps: optimizer steps.
        output_dir: the artifact folder (checkpoints go to `output_dir/checkpoints`).
        config: the method's config (`ControlNetConfig`, `T2IAdapterConfig`, `IPAdapterConfig`) or a dict of
            its fields; None takes the authors' defaults.
        condition_params: the extractor's parameters (e.g. `{"low_threshold": 50, "high_threshold": 150}`).
        image_encoder: IP-Adapter's CLIP image tower (see `load_image_encoder`); None: `studio/shapes-clip`.
        batch_size: samples per step.
        flip: also train on mirror images (their conditions mirrored too).
        checkpoint_every: write a checkpoint every this many steps (one is always written at the end).
        resume: `True` continues from the newest checkpoint in `output_dir`, exactly.
        overwrite: replace another run's checkpoints in `output_dir` (otherwise such a folder is refused).
        preview_every: sample previews (condition beside samples) every this many steps into
            `output_dir/previews`; None: no previews.
        preview_steps: sampling steps of a preview.
        on_preview: `(step, [condition, samples...]) -> None`, called with each preview (e.g. by a UI).
        callbacks: more `studio.engine.Callback`s (progress, stop).
        mixed_precision: as in `studio.engine.train`.
        memory: how the run saves GPU memory (`diffusion.memory.MemoryOptions` or a GPU-memory preset such as
            `"16"`); None: chosen by the device's memory.
        seed: seeds initialisation, data order, noise and condition dropping.
        progress: show a progress bar.

    Returns:
        The artifact folder: `save_pretrained` files (ControlNet, T2I-Adapter) or `ip_adapter.safetensors`,
        plus `studio_artifact.json`.

    Raises:
        ValueError: for an unknown method, a bad config, a dataset without usable pairs, or a pipeline in half
            precision trained without mixed precision.
    """
    registered = control_method(method)
    spec, config_cls = registered.spec, registered.config_cls
    config = config_cls.coerce(config)
    check_count("steps", steps)
    check_count("batch_size", batch_size)
    MemoryOptions.of(memory)  # a bad preset is refused before any work
    check_training_precision(pipe, mixed_precision)
    condition = None if spec.reference else condition
    size = pipeline_resolution(pipe)
    examples = read_control_folder(
        dataset_dir, size, condition, condition_params, need_condition=not spec.reference
    )
    output_dir = Path(output_dir)
    unet, arch = pipe.unet, architecture_of(pipe)
    encoders = arch.encoders(pipe)

    with frozen(pipe.unet, pipe.vae, *encoders):
        images = [e.image for e in examples]
        latents = encode_latents(pipe.vae, images_to_tensor(images), flip=flip)
        # Each distinct caption is encoded once, the empty one (for dropped conditioning) among them.
        row = {caption: i for i, caption in enumerate(dict.fromkeys([e.caption for e in examples] + [""]))}
        text = arch.encode_frozen(pipe, list(row))
        captions = torch.tensor([row[e.caption] for e in examples])
        empty = text.select(torch.tensor([row[""]]))
        conditions = None if spec.reference else _condition_tensor([e.condition for e in examples])
        torch.manual_seed(seed)  # the control's random initialisation
        control = spec.build(pipe, config, ControlSetup(images, flip, image_encoder))
        try:
            model = ControlledUNet(unet, spec.residuals, control.module)
            data = ControlSamples(latents, text, captions, conditions, control.image_embeds)
            scheduler = training_scheduler(pipe)
            sampler = cubic_timesteps if getattr(config, "early_timesteps", False) else None

            def loss_fn(wrapped: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
                cond, embeds = Conditioning(batch["text"], batch.get("pooled")), batch.get("image_embeds")
                if spec.drop is not None:
                    cond, embeds = spec.drop(cond, embeds, empty.to(cond.hidden.device), config)
                text_kwargs = arch.unet_kwargs(cond, size, size)

                def predict(noisy: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                    return wrapped(noisy, t, text_kwargs, batch.get("condition"), embeds)

                return denoising_loss(predict, batch["latents"], scheduler, timestep_sampler=sampler)

            savings = memory_savings(
                memory,
                mixed_precision,
                frozen=[unet, pipe.vae, *encoders, control.module],
                backward=[unet, control.module],
                offload=[pipe.vae, *encoders],  # captions are encoded once, before training
                device=lambda: next(unet.parameters()).device,
            )
            with savings as saving:
                preview = []
                if preview_every:
                    sample_fn = saving.preview(
                        control_sampler(pipe, method, control, examples[0], preview_steps, seed)
                    )
                    preview = [PreviewCallback(sample_fn, preview_every, output_dir / "previews", on_preview)]
                result = train(
                    model,
                    data,
                    loss_fn,
                    batch_size=batch_size,
                    max_steps=steps,
                    lr=config.lr,
                    optimizer=saving.optimizer,
                    weight_decay=config.weight_decay,
                    mixed_precision=mixed_precision,
                    callbacks=[*preview, *callbacks],
                    output_dir=output_dir,
                    checkpoint_every=checkpoint_every,
                    resume=resume,
                    overwrite=overwrite,
                    seed=seed,
                    progress=progress,
                )
            extra = {
                "steps": result.steps,
                "dataset": str(dataset_dir),
                "resolution": size,
                "condition": condition,
                "condition_params": dict(condition_params or {}) if condition else {},
                "image_encoder": control.image_encoder.spec if control.image_encoder is not None else None,
            }
            record = artifact_metadata(method, base_model_of(pipe), config.to_dict(), **extra)
            with main_process() as main:  # one copy of the artifact, however many processes trained
                if main:
                    registered.save(pipe, control, output_dir, record)
                    write_artifact_info(output_dir, record)
        finally:
            if spec.release is not None:
                spec.release(pipe)
    return output_dir
