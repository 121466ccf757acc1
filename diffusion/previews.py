"""Preview samples during training, through the engine's callbacks."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image

from studio.core import atomic_path
from studio.engine import Callback, TrainState


def image_grid(images: Sequence[Image.Image]) -> Image.Image:
    """Images side by side in one row (all the size of the first)."""
    width, height = images[0].size
    grid = Image.new("RGB", (width * len(images), height))
    for i, image in enumerate(images):
        grid.paste(image.resize((width, height)), (i * width, 0))
    return grid


class PreviewCallback(Callback):
    """Every `every` optimizer steps (and at the end), sample preview images and hand them on.

    Args:
        sample_fn: `() -> list of PIL images`, run under `torch.no_grad()` by the caller's choice.
        every: steps between previews.
        folder: where `step-000100.png` grids are written (None: not written).
        on_preview: `(step, images) -> None`, e.g. the UI's live gallery.
    """

    def __init__(
        self,
        sample_fn: Callable[[], list[Image.Image]],
        every: int,
        folder: str | os.PathLike | None = None,
        on_preview: Callable[[int, list[Image.Image]], None] | None = None,
    ) -> None:
        if every < 1:
            raise ValueError(f"preview every must be >= 1 step, got {every}")
        self.sample_fn = sample_fn
        self.every = every
        self.folder = Path(folder) if folder is not None else None
        self.on_preview = on_preview
        self.last_step = -1

    def _preview(self, step: int) -> None:
        if step == self.last_step:
            return
        self.last_step = step
        images = self.sample_fn()
        if self.folder is not None:
            with atomic_path(self.folder / f"step-{step:06d}.png") as tmp:
                image_grid(images).save(tmp, format="PNG")
        if self.on_preview is not None:
            self.on_preview(step, images)

    def on_step_end(self, state: TrainState) -> None:
        """Preview at every multiple of `every`."""
        if state.step % self.every == 0:
            self._preview(state.step)

    def on_train_end(self, state: TrainState) -> None:
        """Preview the final state too."""
        self._preview(state.step)
