"""Helpers shared by the tests of several packages (the engine's script under `accelerate launch` too)."""

from __future__ import annotations

from studio.engine import Callback


class StopAt(Callback):
    """Presses "Stop": asks the loop to stop once `step` optimizer steps are done.

    Args:
        step: the optimizer step after which training stops.
    """

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, state) -> None:
        """Set `state.should_stop` once `state.step` reaches `step`."""
        if state.step >= self.step:
            state.should_stop = True
