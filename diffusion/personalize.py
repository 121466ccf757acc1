"""`personalize`: teach a pipeline a concept from a few images with Textual Inversion or SVDiff."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from studio.core import inject
from studio.engine import Callback, check_count, check_number, train

from .adapter_folders import save_adapter_folders
from .artifacts import artifact_metadata, base_model_of, write_artifact_info
from .concept_data import SUBJECT_TEMPLATES, TI_TEMPLATES, ConceptDataset, fill
from .denoise import denoising_loss, training_scheduler
from .images import images_to_tensor, list_image_files, load_images, pipeline_resolution
from .latents import PromptCache, encode_latents, text_embeddings, tokenize
from .previews import PreviewCallback
from .svdiff import SVDiffConfig, svdiff_param_groups
from .textual_inversion import (
    TextualInversionConfig,
    add_concept,
    check_new_token,
    expand_prompt,
    save_embeddings,
)
from .unload import remove_adapter, requires_grad_flags

METHODS = ("textual_inversion", "svdiff")


class _Prompts:
    """Prompt embeddings by index: cached when the text encoder cannot change them, else encoded live."""

    def __init__(self, text_encoder: nn.Module, ids: torch.Tensor, cached: torch.Tensor | None) -> None:
        self.text_encoder, self.ids, self.cached = text_encoder, ids, cached

    def __call__(self, index: torch.Tensor) -> torch.Tensor:
        if self.cached is not None:
            return self.cached[index.cpu()].to(index.device)
        return text_embeddings(self.text_encoder, self.ids[index.cpu()])


class ConceptTrainer(nn.Module):
    """What the engine trains: the pipeline's UNet and text encoder (carrying the adapter) and the loss.

    Args:
        unet: the pipeline's UNet.
        text_encoder: the pipeline's text encoder.
        scheduler: the training noise scheduler.
        prompts: instance prompt embeddings by index.
        class_prompts: class prompt embeddings by index (prior preservation), or None.
        prior_loss_weight: weight of the class-image term.
    """

    def __init__(self, unet, text_encoder, scheduler, prompts, class_prompts=None, prior_loss_weight=1.0):
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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-") or "concept"


def _class_images(pipe, class_word: str, count: int, folder: Path, seed: int, steps: int) -> list[Path]:
    # Generated once by the base model and kept in the run folder, so a resumed run trains on the same ones.
    folder.mkdir(parents=True, exist_ok=True)
    have = list_image_files(folder)
    for i in range(len(have), count):
        generator = torch.Generator().manual_seed(seed * 100_003 + i)
        image = pipe(f"a photo of a {class_word}", num_inference_steps=steps, generator=generator).images[0]
        image.save(folder / f"{i:04d}.png")
    return list_image_files(folder)[:count]  # read by `load_images`, as the user's images are


def personalize(
    pipe,
    images,
    method: str = "textual_inversion",
    token: str = "<concept>",
    init_token: str | None = None,
    class_word: str | None = None,
    *,
    steps: int = 500,
    batch_size: int = 4,
    lr: float | None = None,
    lr_norm: float = 1e-6,
    num_vectors: int = 1,
    train_text_encoder: bool = False,
    prompt_templates: Sequence[str] | None = None,
    flip: bool = True,
    prior_preservation: bool = False,
    class_images=None,
    num_class_images: int = 16,
    prior_loss_weight: float = 1.0,
    output_dir: str | os.PathLike | None = None,
    resume: bool | str | os.PathLike = False,
    overwrite: bool = False,
    checkpoint_every: int | None = None,
    preview_every: int | None = None,
    preview_prompt: str | None = None,
    preview_steps: int = 20,
    on_preview: Callable[[int, list[Image.Image]], None] | None = None,
    callbacks: Sequence[Callback] = (),
    seed: int = 0,
    mixed_precision: str = "auto",
    grad_accum_steps: int = 1,
    warmup_steps: int | float = 0,
    progress: bool = True,
) -> Path:
    """Teach `pipe` a concept from a few images; the pipeline itself is left unchanged.

    Args:
        pipe: a Stable-Diffusion-format pipeline (`diffusion.load_pipeline`).
        images: the concept's images: a folder, paths, PIL images (any mode, EXIF rotation and size).
        method: `"textual_inversion"` (learn the token's embedding) or `"svdiff"` (shift singular values).
        token: the placeholder used in prompts, e.g. `"<my-cat>"`; Textual Inversion adds it to the vocabulary.
        init_token: Textual Inversion's starting word (default: `class_word`, else random).
        class_word: the concept's class ("cat"); SVDiff prompts say "a photo of <token> cat"; needed for prior
            preservation.
        steps: optimizer steps.
        batch_size: images per step.
        lr: learning rate; default `5e-4 × batch_size × grad_accum_steps` for Textual Inversion (the diffusers
            recipe's scaling), `1e-3` for SVDiff's spectral shifts.
        lr_norm: SVDiff's learning rate for norm-layer shifts.
        num_vectors: Textual Inversion vectors per token.
        train_text_encoder: SVDiff also shifts the text encoder's weights.
        prompt_templates: training prompts with a `{}` for the concept (defaults by method).
        flip: also train on horizontally flipped images.
        prior_preservation: add a loss on class images so the class word keeps its meaning.
        class_images: images of the class; by default `num_class_images` are generated by the base model.
        num_class_images: how many class images to generate.
        prior_loss_weight: weight of the prior term.
        output_dir: the artifact folder (default `runs/<method>-<token>`); checkpoints and previews go inside.
        resume: `True` continues from the newest checkpoint in `output_dir` (exactly as if uninterrupted).
        overwrite: replace another run's checkpoints in `output_dir` (otherwise such a folder is refused).
        checkpoint_every: write a checkpoint every this many steps (one is always written at the end).
        preview_every: sample a preview every this many steps (written to `output_dir/previews/`).
        preview_prompt: the preview prompt (default: the first training prompt).
        preview_steps: sampling steps of a preview.
        on_preview: `(step, images)` called with each preview.
        callbacks: more `studio.engine.Callback`s (loss, progress, early stop).
        seed: seeds training and previews.
        mixed_precision: `"auto"` (bf16/fp16 on a GPU, fp32 on CPU), `"no"`, `"fp16"`, `"bf16"`.
        grad_accum_steps: micro-batches per step.
        warmup_steps: LR warmup (steps, or a fraction of `steps`).
        progress: show a progress bar.

    Returns:
        The artifact folder: `learned_embeds.safetensors` (Textual Inversion) or `unet/` [+ `text_encoder/`]
        adapter folders (SVDiff), with `studio_artifact.json`.

    Raises:
        ValueError: unknown method, no usable images, a token already in the vocabulary, prior preservation
            without a class word, `steps < 1`, a non-finite or non-positive learning rate.
    """
    check_count("steps", steps)
    check_count("batch_size", batch_size)
    for name, value in [("lr", lr), ("lr_norm", lr_norm)]:
        if value is not None:
            check_number(name, value)
    check_number("prior_loss_weight", prior_loss_weight, allow_zero=True)
    if method not in METHODS:
        raise ValueError(f"unknown personalization method {method!r}; choose one of {', '.join(METHODS)}")
    if prior_preservation and not class_word:
        raise ValueError("prior_preservation needs class_word (the concept's class, e.g. 'cat')")
    if method == "textual_inversion":
        config = TextualInversionConfig(
            token=token,
            init_token=init_token if init_token is not None else (class_word or ""),
            num_vectors=num_vectors,
        )
        check_new_token(pipe.tokenizer, config)  # before the slow steps (class images, latents)
    else:
        config = SVDiffConfig()
    size = pipeline_resolution(pipe)
    pixels = images_to_tensor(load_images(images, size))
    out = Path(output_dir) if output_dir is not None else Path("runs") / f"{method}-{_slug(token)}"
    base = base_model_of(pipe)
    class_pixels = None
    if prior_preservation:
        if class_images is None:
            class_images = _class_images(pipe, class_word, num_class_images, out / "class_images", seed, 25)
        class_pixels = images_to_tensor(load_images(class_images, size))
    latents = encode_latents(pipe.vae, pixels, flip=flip)
    class_latents = encode_latents(pipe.vae, class_pixels, flip=flip) if class_pixels is not None else None

    unet, text_encoder = pipe.unet, pipe.text_encoder
    flags = {unet: requires_grad_flags(unet), text_encoder: requires_grad_flags(text_encoder)}
    tokenizer, param_groups = pipe.tokenizer, None
    try:
        if method == "textual_inversion":
            tokenizer, _ = add_concept(pipe.tokenizer, text_encoder, config)
            unet.requires_grad_(False)
            prompts = [expand_prompt(p, config) for p in fill(prompt_templates or TI_TEMPLATES, token)]
            live_text, lr = True, lr if lr is not None else 5e-4 * batch_size * grad_accum_steps
            hyper = {**config.to_dict(), "token_names": config.token_names()}
        else:
            inject(unet, config)
            if train_text_encoder:
                inject(text_encoder, SVDiffConfig())
            else:
                text_encoder.requires_grad_(False)
            subject = f"{token} {class_word}" if class_word else token
            prompts = fill(prompt_templates or SUBJECT_TEMPLATES, subject)
            live_text, lr = train_text_encoder, lr if lr is not None else 1e-3
            hyper = {**config.to_dict(), "train_text_encoder": train_text_encoder, "lr_norm": lr_norm}
            param_groups = lambda model: svdiff_param_groups(model, lr, lr_norm)  # noqa: E731
        ids = tokenize(tokenizer, prompts)
        source = _Prompts(
            text_encoder, ids, None if live_text else PromptCache(tokenizer, text_encoder)(prompts)
        )
        class_source, class_list = None, fill(SUBJECT_TEMPLATES, class_word or "")
        if class_latents is not None:
            # Class prompts hold no new token: only text-encoder shifts can change their embeddings.
            class_live = method == "svdiff" and train_text_encoder
            cached = None if class_live else PromptCache(pipe.tokenizer, text_encoder)(class_list)
            class_source = _Prompts(text_encoder, tokenize(pipe.tokenizer, class_list), cached)
        trainer = ConceptTrainer(
            unet, text_encoder, training_scheduler(pipe), source, class_source, prior_loss_weight
        )
        dataset = ConceptDataset(latents, len(prompts), class_latents, len(class_list))
        all_callbacks = list(callbacks)
        if preview_every:
            sample = _preview_sampler(
                pipe, tokenizer, preview_prompt or prompts[0], config, preview_steps, seed
            )
            all_callbacks.append(PreviewCallback(sample, preview_every, out / "previews", on_preview))
        result = train(
            trainer,
            dataset,
            lambda model, batch: model(batch),
            batch_size=batch_size,
            max_steps=steps,
            lr=lr,
            param_groups=param_groups,
            warmup_steps=warmup_steps,
            grad_accum_steps=grad_accum_steps,
            mixed_precision=mixed_precision,
            callbacks=all_callbacks,
            output_dir=out,
            checkpoint_every=checkpoint_every,
            resume=resume,
            overwrite=overwrite,
            seed=seed,
            progress=progress,
        )
        hyper.update(
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            flip=flip,
            seed=seed,
            prior_preservation=prior_preservation,
            prompts=prompts,
        )
        extra = {
            "token": token,
            "class_word": class_word,
            "steps_done": result.steps,
            "stopped": result.stopped,
        }
        if method == "textual_inversion":
            save_embeddings(out, token, text_encoder.get_input_embeddings().new_embeddings)
        else:
            save_adapter_folders(pipe, out, base)
        write_artifact_info(out, artifact_metadata(method, base, hyper, **extra))
    finally:
        for model, model_flags in flags.items():
            remove_adapter(model, model_flags)
            model.eval()
    return out


def _preview_sampler(pipe, tokenizer, prompt: str, config, steps: int, seed: int):
    if isinstance(config, TextualInversionConfig):
        prompt = expand_prompt(prompt, config)

    @torch.no_grad()
    def sample() -> list[Image.Image]:
        modes = [(m, m.training) for m in (pipe.unet, pipe.text_encoder)]
        # Previews must not consume the training RNG streams, or a run with previews would differ from one without.
        with torch.random.fork_rng(devices=[]), contextlib.ExitStack():
            for model, _ in modes:
                model.eval()
            embeds = text_embeddings(pipe.text_encoder, tokenize(tokenizer, [prompt, ""]))
            images = pipe(
                prompt_embeds=embeds[:1],
                negative_prompt_embeds=embeds[1:],
                num_inference_steps=steps,
                generator=torch.Generator().manual_seed(seed),
            ).images
        for model, was in modes:
            model.train(was)
        return images

    return sample
