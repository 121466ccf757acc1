"""`ConceptTrainer`: the module the engine trains on a personalization run, and its loss."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..denoise import denoising_loss

Prompts = Callable[[torch.Tensor], torch.Tensor]


class ConceptTrainer(nn.Module):
    """What the engine trains: the pipeline's UNet and text encoder (carrying the adapter) and the loss.

    Args:
        unet: the pipeline's UNet.
        text_encoder: the pipeline's text encoder.
        scheduler: the training noise scheduler.
        prompts: instance prompt embeddings by index (e.g. a `PromptSource`).
        class_prompts: class prompt embeddings by index (prior preservation), or None.
        prior_loss_weight: weight of the class-image term.
    """

    def __init__(
        self,
        unet: nn.Module,
        text_encoder: nn.Module,
        scheduler,
        prompts: Prompts,
        class_prompts: Prompts | None = None,
        prior_loss_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.unet, self.text_encoder = unet, text_encoder
        self.scheduler, self.prompts, self.class_prompts = scheduler, prompts, class_prompts
        self.prior_loss_weight = prior_loss_weight

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The denoising loss of a batch (plus the weighted prior term when class latents are present)."""
        latents, embeddings = batch["latents"], self.prompts(batch["prompt"])
        n = latents.shape[0]
        if "class_latents" in batch:
            latents = torch.cat([latents, batch["class_latents"]])
            embeddings = torch.cat([embeddings, self.class_prompts(batch["class_prompt"])])

        def predict(noisy: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.unet(noisy, t, encoder_hidden_states=embeddings).sample

        per_sample = denoising_loss(predict, latents, self.scheduler, reduction="none")
        loss = per_sample[:n].mean()
        if per_sample.shape[0] > n:
            loss = loss + self.prior_loss_weight * per_sample[n:].mean()
        return loss
