"""`LinearShape`: lets an adapter layer that wraps a Linear answer for the Linear's size, as pipelines ask
(SDXL's reads `unet.add_embedding.linear_1.in_features` to check its size conditioning)."""

from __future__ import annotations


class LinearShape:
    """Mixin for an `AdapterLayer` wrapping an `nn.Linear` (or a Conv2d, whose size is never asked for)."""

    @property
    def in_features(self) -> int:
        """The wrapped Linear's input size."""
        return self.base_layer.in_features

    @property
    def out_features(self) -> int:
        """The wrapped Linear's output size."""
        return self.base_layer.out_features
