"""`ConceptTrainer`: the module the engine trains on a personalization run, and its loss."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..architecture import Architecture, Conditioning
from ..denoise import denoising_loss
from .cutmix import NO_SUBJECT
from .unmix import UnmixAttention

Prompts = Callable[[torch.Tensor], Conditioning]


class ConceptTrainer(nn.Module):
    """What the engine trains: the pipeline's UNet and text encoders (carrying the adapter) and the loss.

    Args:
        architecture: the pipeline's architecture (how its UNet is conditioned).
        unet: the pipeline's UNet.
        text_encoders: the pipeline's text encoders.
        scheduler: the training noise scheduler.
        prompts: instance prompt conditioning by index (e.g. a `PromptSource`).
        class_prompts: class prompt conditioning by index (prior preservation), or None.
        prior_loss_weight: weight of the class-image term.
        image_size: the training images' side in pixels (SDXL's size conditioning).
        unmix: the Unmix regularization of Cut-Mix samples, or None.
    """

    def __init__(
        self,
        architecture: Architecture,
        unet: nn.Module,
        text_encoders: list[nn.Module],
        scheduler,
        prompts: Prompts,
        class_prompts: Prompts | None = None,
        prior_loss_weight: float = 1.0,
        image_size: int = 512,
        unmix: Unmix | None = None,
    ) -> None:
        super().__init__()
        self.architecture = architecture
        self.unet, self.text_encoders = unet, nn.ModuleList(text_encoders)
        self.scheduler, self.prompts, self.class_prompts = scheduler, prompts, class_prompts
        self.prior_loss_weight, self.image_size, self.unmix = prior_loss_weight, image_size, unmix

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The denoising loss of a batch (plus the weighted prior term when class latents are present, and the
        weighted Unmix penalty with `unmix`)."""
        latents, cond = batch["latents"], self.prompts(batch["prompt"])
        n = latents.shape[0]
        if "class_latents" in batch:
            latents = torch.cat([latents, batch["class_latents"]])
            cond = Conditioning.cat([cond, self.class_prompts(batch["class_prompt"])])
        kwargs = self.architecture.unet_kwargs(cond, self.image_size, self.image_size)

        def predict(noisy: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.unet(noisy, t, **kwargs).sample

        if self.unmix is None:
            per_sample = denoising_loss(predict, latents, self.scheduler, reduction="none")
        else:
            sides = self.unmix.sides(batch["prompt"], latents.shape[0])
            with self.unmix.attention.watch(sides, tuple(latents.shape[-2:])):
                per_sample = denoising_loss(predict, latents, self.scheduler, reduction="none")
        loss = per_sample[:n].mean()
        if per_sample.shape[0] > n:
            loss = loss + self.prior_loss_weight * per_sample[n:].mean()
        if self.unmix is not None:
            loss = loss + self.unmix.weight * self.unmix.attention.penalty().to(loss.device)
        return loss


@dataclass
class Unmix:
    """The Unmix term of a Cut-Mix-Unmix run.

    Args:
        attention: the hooks collecting the penalty from the UNet's cross-attention.
        prompt_sides: `[num_prompts, L]` word sides of every instance prompt (`NO_SUBJECT` throughout for the
            prompts of one concept).
        weight: the penalty's weight in the loss.
    """

    attention: UnmixAttention
    prompt_sides: torch.Tensor
    weight: float

    def sides(self, prompts: torch.Tensor, batch_size: int) -> torch.Tensor:
        """`[batch_size, L]` sides of a batch: its prompts' rows, then `NO_SUBJECT` rows for its class samples."""
        rows = self.prompt_sides[prompts.cpu()]
        pad = torch.full((batch_size - rows.shape[0], rows.shape[1]), NO_SUBJECT, dtype=rows.dtype)
        return torch.cat([rows, pad]).to(prompts.device)
