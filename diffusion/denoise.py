"""The noise-prediction training loss shared by every diffusion method (personalization and control).

One step: draw timesteps (uniformly by default, or from a caller's sampler, e.g. biased to early sampling
steps for T2I-Adapter), noise the clean latents with the pipeline's own schedule, ask the model for its
prediction and regress it onto the target of the scheduler's `prediction_type` (epsilon, v or sample).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler

TimestepSampler = Callable[[int, int, torch.device], torch.Tensor]
"""`(batch_size, num_train_timesteps, device) -> LongTensor [batch_size]` of timesteps in `[0, T)`."""

LossWeighting = Callable[[torch.Tensor, DDPMScheduler], torch.Tensor]
"""`(timesteps, scheduler) -> float tensor [batch_size]` of per-sample loss weights."""


def training_scheduler(pipe_or_scheduler) -> DDPMScheduler:
    """A `DDPMScheduler` with the pipeline's noise schedule and prediction type, for adding noise in training.

    Args:
        pipe_or_scheduler: a pipeline (its `scheduler` is used) or any diffusers scheduler.

    Returns:
        A new `DDPMScheduler` built from that scheduler's config.
    """
    scheduler = getattr(pipe_or_scheduler, "scheduler", pipe_or_scheduler)
    return DDPMScheduler.from_config(scheduler.config)


def uniform_timesteps(batch_size: int, num_train_timesteps: int, device: torch.device) -> torch.Tensor:
    """Timesteps drawn uniformly from `[0, T)` with the global RNG (restored on resume by the engine).

    Args:
        batch_size: how many.
        num_train_timesteps: T.
        device: device of the result.

    Returns:
        LongTensor `[batch_size]`.
    """
    return torch.randint(0, num_train_timesteps, (batch_size,)).to(device)


def cubic_timesteps(batch_size: int, num_train_timesteps: int, device: torch.device) -> torch.Tensor:
    """Timesteps `t = (1 - u³)·T`, u ~ U(0, 1): biased to large t, i.e. the early sampling steps where
    structure forms (the schedule T2I-Adapter's authors use).

    Args:
        batch_size: how many.
        num_train_timesteps: T.
        device: device of the result.

    Returns:
        LongTensor `[batch_size]` in `[0, T)`.
    """
    u = torch.rand(batch_size)
    t = ((1 - u**3) * num_train_timesteps).long().clamp_(0, num_train_timesteps - 1)
    return t.to(device)


def prediction_target(
    scheduler: DDPMScheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    """What the model should predict for `scheduler.config.prediction_type`.

    Args:
        scheduler: the training scheduler.
        latents: clean latents.
        noise: the noise that was added.
        timesteps: the timesteps used.

    Returns:
        `noise` (epsilon), the velocity (v_prediction) or `latents` (sample).

    Raises:
        ValueError: for another prediction type.
    """
    kind = scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    if kind == "sample":
        return latents
    raise ValueError(f"unsupported prediction_type {kind!r} (expected epsilon, v_prediction or sample)")


def denoising_loss(
    predict: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    latents: torch.Tensor,
    scheduler: DDPMScheduler,
    *,
    timestep_sampler: TimestepSampler | None = None,
    weighting: LossWeighting | None = None,
    timesteps: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """The diffusion training loss for one batch of clean latents.

    Args:
        predict: `(noisy_latents, timesteps) -> prediction`, e.g.
            `lambda x, t: unet(x, t, encoder_hidden_states=emb).sample`; a control method adds its residuals
            inside this function.
        latents: clean, scaled latents `[B, C, h, w]` (e.g. from `LatentCache.sample`).
        scheduler: the training scheduler (`training_scheduler(pipe)`).
        timestep_sampler: how timesteps are drawn (default `uniform_timesteps`); ignored if `timesteps` given.
        weighting: optional per-sample loss weights from the timesteps (e.g. min-SNR).
        timesteps: fixed timesteps `[B]` (tests, evaluation); drawn when None.
        noise: fixed noise like `latents`; drawn from the global RNG when None.
        reduction: `"mean"` (a scalar) or `"none"` (one loss per sample, `[B]`, e.g. to weight a prior term).

    Returns:
        The loss, computed in float32 whatever the model's precision.
    """
    batch = latents.shape[0]
    if timesteps is None:
        sampler = timestep_sampler or uniform_timesteps
        timesteps = sampler(batch, scheduler.config.num_train_timesteps, latents.device)
    timesteps = timesteps.to(latents.device).long()
    if noise is None:
        noise = torch.randn(latents.shape, dtype=latents.dtype).to(latents.device)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    target = prediction_target(scheduler, latents, noise, timesteps)
    prediction = predict(noisy, timesteps)
    per_sample = F.mse_loss(prediction.float(), target.float(), reduction="none").flatten(1).mean(1)
    if weighting is not None:
        per_sample = per_sample * weighting(timesteps, scheduler).to(per_sample)
    if reduction == "none":
        return per_sample
    if reduction == "mean":
        return per_sample.mean()
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
