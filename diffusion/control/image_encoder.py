"""The frozen CLIP image tower an IP-Adapter is conditioned on: open_clip or transformers.

The default is the bundled reference CLIP (`studio/shapes-clip`), read with open_clip from its local config
and safetensors. Embeddings are the tower's projected, unnormalised image embeddings (what diffusers' own
`encode_image` feeds an IP-Adapter); with a non-transformers tower they reach a stock pipeline as
`ip_adapter_image_embeds`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image

from studio.core import is_asset_name, open_clip_weights, resolve_asset, split_clip_spec

DEFAULT_IMAGE_ENCODER = "studio/shapes-clip"
OPEN_CLIP_CONFIG = "open_clip_config.json"


class ImageEncoder:
    """A frozen image tower with its preprocessing: PIL images in, embeddings `[N, D]` out.

    Args:
        encode: `pixel batch -> embeddings`.
        preprocess: `PIL image -> [3, H, W]` tensor.
        embed_dim: width of the embeddings.
        spec: the string `load_image_encoder` recreates it from (recorded in artifacts).
        device: where the tower runs.
    """

    def __init__(
        self,
        encode: Callable[[torch.Tensor], torch.Tensor],
        preprocess: Callable[[Image.Image], torch.Tensor],
        embed_dim: int,
        spec: str,
        device: torch.device,
    ) -> None:
        self.encode = encode
        self.preprocess = preprocess
        self.embed_dim = int(embed_dim)
        self.spec = spec
        self.device = device

    @torch.no_grad()
    def __call__(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Embed images.

        Args:
            images: RGB PIL images.

        Returns:
            Float32 embeddings `[N, embed_dim]` on `self.device`.
        """
        batch = torch.stack([self.preprocess(image.convert("RGB")) for image in images]).to(self.device)
        return self.encode(batch).float()


def load_image_encoder(
    spec: str | os.PathLike | ImageEncoder | None = None, device: str | torch.device | None = None
) -> ImageEncoder:
    """Load a CLIP image tower.

    Args:
        spec: None or `"studio/shapes-clip"` (the bundled reference CLIP); a folder with
            `open_clip_config.json` (+ `open_clip_model.safetensors`); a folder of a transformers
            `CLIPVisionModelWithProjection` (config.json + weights, optional preprocessor_config.json); an
            open_clip spec as `vlm.create_clip` takes it (`"hf-hub:org/repo"`, `"local-dir:/path"`, or an
            architecture with a pretrained tag: `"ViT-B-32:laion2b_s34b_b79k"`; see `studio.core.split_clip_spec`);
            or an `ImageEncoder`, returned as is.
        device: where the tower runs (default CPU).

    Returns:
        The encoder, frozen and in eval mode.

    Raises:
        FileNotFoundError: for a folder that holds neither format, or an unknown bundled name.
    """
    if isinstance(spec, ImageEncoder):
        return spec
    device = torch.device(device or "cpu")
    spec = DEFAULT_IMAGE_ENCODER if spec is None else os.fspath(spec)
    folder = resolve_asset(spec) if is_asset_name(spec) and not Path(spec).exists() else Path(spec)
    if folder.is_dir() and (folder / OPEN_CLIP_CONFIG).is_file():
        return _open_clip(f"local-dir:{folder}", None, spec, device)
    if folder.is_dir() and (folder / "config.json").is_file():
        return _transformers(folder, spec, device)
    if folder.is_dir() or is_asset_name(spec):
        raise FileNotFoundError(
            f"{folder} is neither an open_clip folder ({OPEN_CLIP_CONFIG}) nor a transformers "
            "CLIPVisionModelWithProjection folder (config.json)"
        )
    return _open_clip(*split_clip_spec(spec), spec, device)


def _open_clip(name: str, pretrained: str | None, spec: str, device: torch.device) -> ImageEncoder:
    import open_clip  # on first use: only IP-Adapter needs it, and it is slow to import (timm)

    kwargs = open_clip_weights(name, pretrained)
    model, _, preprocess = open_clip.create_model_and_transforms(name, device=device, **kwargs)
    model.eval().requires_grad_(False)
    # open_clip's image tower projects to the joint space; its width is the text projection's output.
    with torch.no_grad():
        size = model.visual.image_size
        side = size if isinstance(size, int) else size[0]
        dim = model.encode_image(torch.zeros(1, 3, side, side, device=device)).shape[-1]
    return ImageEncoder(model.encode_image, preprocess, dim, spec, device)


def _transformers(folder: Path, spec: str, device: torch.device) -> ImageEncoder:
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    model = CLIPVisionModelWithProjection.from_pretrained(folder, local_files_only=True).to(device)
    model.eval().requires_grad_(False)
    if (folder / "preprocessor_config.json").is_file():
        processor = CLIPImageProcessor.from_pretrained(folder, local_files_only=True)
    else:
        side = model.config.image_size
        processor = CLIPImageProcessor(
            size={"shortest_edge": side}, crop_size={"height": side, "width": side}
        )

    def preprocess(image: Image.Image) -> torch.Tensor:
        return processor(images=image, return_tensors="pt").pixel_values[0]

    def encode(pixels: torch.Tensor) -> torch.Tensor:
        return model(pixel_values=pixels).image_embeds

    return ImageEncoder(encode, preprocess, model.config.projection_dim, spec, device)
