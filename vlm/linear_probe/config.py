"""The CLIP linear probe's config."""

from __future__ import annotations

from dataclasses import dataclass

from studio.core import MethodConfig, check_range, hfield


@dataclass
class ClipLinearProbeConfig(MethodConfig):
    """Logistic regression (full-batch L-BFGS) with an L2 penalty chosen on a validation split."""

    method = "linear_probe"

    l2_grid: list[float] = hfield(
        [1e-5, 1e-4, 1e-3, 1e-2, 1e-1],
        "L2 strengths tried on the validation split carved from the support set.",
    )
    l2: float = hfield(1e-3, "L2 strength used when no validation split is possible (a class with one shot).")
    max_iter: int = hfield(300, "L-BFGS iterations (full batch).")

    def validate(self) -> None:
        """Check ranges."""
        check_range("l2", self.l2, 0.0)
        check_range("max_iter", self.max_iter, 1)
        if not self.l2_grid or min(self.l2_grid) < 0:
            raise ValueError(f"l2_grid must be a non-empty list of values >= 0, got {self.l2_grid!r}")
