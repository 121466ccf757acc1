"""A toy vision method, written the way every method is: a config, an adapter layer, one registration.

Block gate: each transformer block's output is scaled by `1 + g` with one learned `g` per block (0 at init,
so the model starts equal to its base). Only `tests/core/test_adding_a_method.py` imports it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from studio.core import AdapterConfig, AdapterLayer, check_range, hfield, register_method, replace_module


@dataclass
class BlockGateConfig(AdapterConfig):
    """Scale each block's output by a learned `1 + g`."""

    method = "block_gate"

    init: float = hfield(0.0, "Initial value of every gate g (0: the model starts equal to its base).")

    def validate(self) -> None:
        """The gate starts where the output is not switched off."""
        check_range("init", self.init, -0.99)


class BlockGate(AdapterLayer):
    """A block whose output is multiplied by `1 + g`."""

    def __init__(self, block: nn.Module, init: float) -> None:
        super().__init__(block)
        self.gate = nn.Parameter(torch.tensor(float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output, gated while the adapter is active."""
        out = self.base_layer(x)
        return out * (1 + self.gate) if self.active else out


def apply_block_gate(model: nn.Module, config: BlockGateConfig) -> None:
    """Wrap every block of a timm ViT in a `BlockGate`."""
    for i, block in enumerate(model.blocks):
        replace_module(model, f"blocks.{i}", BlockGate(block, config.init))


register_method(BlockGateConfig, apply_block_gate, domain="vision", task="finetune")
