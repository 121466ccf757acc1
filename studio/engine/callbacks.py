"""Training state and the callback interface the loop reports to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class TrainState:
    """Live view of a training run, handed to every callback.

    Args:
        step: optimizer steps done so far (counting steps restored from a checkpoint).
        total_steps: optimizer steps the run will take in total.
        epoch: current epoch, 0-based.
        loss: mean loss of the latest optimizer step (averaged over accumulated micro-batches and processes).
        lr: learning rate of the first parameter group after the latest step.
        elapsed_s: wall-clock seconds since this call of `train` started.
        eta_s: estimated seconds until `total_steps` is reached.
        should_stop: set to `True` from a callback to stop after the current optimizer step; the loop then
            writes a checkpoint (when it has an `output_dir`) and returns with `stopped=True`.
    """

    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    loss: float = float("nan")
    lr: float = 0.0
    elapsed_s: float = 0.0
    eta_s: float = float("nan")
    should_stop: bool = False


class Callback:
    """Base class for training callbacks; every hook is a no-op. Hooks run on the main process only."""

    def on_train_begin(self, state: TrainState) -> None:
        """Called once before the first step (after a resume has been restored).

        Args:
            state: the current training state.
        """

    def on_step_end(self, state: TrainState) -> None:
        """Called after every optimizer step.

        Args:
            state: the current training state; set `state.should_stop = True` to stop the run.
        """

    def on_evaluate(self, state: TrainState, metrics: dict[str, float]) -> None:
        """Called after each evaluation.

        Args:
            state: the current training state.
            metrics: what `eval_fn` returned.
        """

    def on_checkpoint(self, state: TrainState, path: str) -> None:
        """Called after a checkpoint has been written and moved into place.

        Args:
            state: the current training state.
            path: directory of the new checkpoint.
        """

    def on_train_end(self, state: TrainState) -> None:
        """Called once when the run finishes or stops.

        Args:
            state: the final training state.
        """


class CallbackList:
    """Fans a hook call out to several callbacks, only on the main process.

    Args:
        callbacks: the callbacks, called in order.
        enabled: `False` on non-main processes, which turns every call into a no-op.
    """

    def __init__(self, callbacks: Sequence[Callback], enabled: bool) -> None:
        self.callbacks = list(callbacks)
        self.enabled = enabled

    def __call__(self, hook: str, *args: Any) -> None:
        """Call `hook` on every callback.

        Args:
            hook: method name, e.g. `"on_step_end"`.
            *args: positional arguments for the hook.
        """
        if not self.enabled:
            return
        for callback in self.callbacks:
            getattr(callback, hook)(*args)
