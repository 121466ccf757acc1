"""Linear-warmup cosine learning-rate schedule, as a picklable `LambdaLR` multiplier."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def resolve_warmup(warmup_steps: int | float, total_steps: int) -> int:
    """Turn a warmup given as steps or as a fraction of the run into a number of steps.

    Args:
        warmup_steps: an `int` number of steps, or a `float` in `[0, 1)` read as a fraction of `total_steps`.
        total_steps: optimizer steps in the whole run.

    Returns:
        The warmup length in optimizer steps.
    """
    if isinstance(warmup_steps, float):
        if not 0.0 <= warmup_steps < 1.0:
            raise ValueError(f"a float warmup_steps is a fraction in [0, 1), got {warmup_steps}")
        return int(warmup_steps * total_steps)
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    return int(warmup_steps)


def cosine_decay(progress: float) -> float:
    """The cosine half-wave every schedule in the project decays by: 1 at `progress` 0, 0 at 1 and after.

    Args:
        progress: the fraction of the decay done (values outside `[0, 1]` are clamped).

    Returns:
        A factor in `[0, 1]`.
    """
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, progress))))


class WarmupCosine:
    """LR multiplier: linear warmup from ~0 to 1, then cosine decay to 0 at `total_steps`.

    A class rather than a closure so that `LambdaLR.state_dict()` records its fields (plain ints).

    Args:
        warmup_steps: steps of linear warmup.
        total_steps: optimizer steps in the whole run.
    """

    def __init__(self, warmup_steps: int, total_steps: int) -> None:
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)

    def __call__(self, step: int) -> float:
        """Multiplier for the learning rate used by optimizer step `step + 1`.

        Args:
            step: optimizer steps already taken.

        Returns:
            A factor in `[0, 1]`.
        """
        if step < self.warmup_steps:
            return (step + 1) / (self.warmup_steps + 1)
        decay_steps = max(1, self.total_steps - self.warmup_steps)
        return cosine_decay((step - self.warmup_steps) / decay_steps)


def warmup_cosine_scheduler(optimizer: Optimizer, warmup_steps: int, total_steps: int) -> LambdaLR:
    """Build a `LambdaLR` that applies `WarmupCosine` to every parameter group.

    Args:
        optimizer: the optimizer whose groups' learning rates are scaled.
        warmup_steps: steps of linear warmup.
        total_steps: optimizer steps in the whole run.

    Returns:
        The scheduler; call `step()` once per optimizer step.
    """
    return LambdaLR(optimizer, WarmupCosine(warmup_steps, total_steps))
