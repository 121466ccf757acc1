"""The training loop: one `train` function on top of `accelerate.Accelerator`."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate import Accelerator, PartialState, skip_first_batches
from accelerate.state import AcceleratorState
from accelerate.utils import gather_object, parse_flag_from_env, set_seed
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from studio.core.modes import train_mode

from .callbacks import Callback, CallbackList, TrainState
from .checkpoint import check_finite_tensors, checkpoint_root, prune_checkpoints, save_checkpoint
from .data import build_loader
from .optim import OptimizerFactory, build_optimizer, resolve_mixed_precision, trainable_param_groups
from .resume import restore_run
from .rng import capture_rng_state
from .run_dir import claim_run_folder
from .schedule import resolve_warmup, warmup_cosine_scheduler
from .validate import check_count, check_loss, check_number


@dataclass
class TrainResult:
    """What `train` returns.

    Args:
        history: one dict per optimizer step of this call: `step`, `epoch`, `loss`, `lr` (the rate that step used).
        evals: one dict per evaluation: `step`, `epoch` and the metrics `eval_fn` returned.
        steps: optimizer steps done in total, counting steps restored from a checkpoint.
        stopped: `True` when a callback stopped the run early.
        last_checkpoint: path of the newest checkpoint written (or resumed from), else `None`.
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    stopped: bool = False
    last_checkpoint: str | None = None


@contextmanager
def main_process() -> Iterator[bool]:
    """Yields whether this is the main process (always, when not launched with several); every process
    waits at the end of the block until all are there, so what the main one writes inside is complete after it.

    Example: `with main_process() as main: if main: save(folder)`.
    """
    # Made before the run's Accelerator, the state must read the launcher's CPU flag as the Accelerator does,
    # or CPU processes would each think they are alone.
    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
    try:
        yield state.is_main_process
    finally:
        state.wait_for_everyone()


def _accelerator(mixed_precision: str, grad_accum_steps: int) -> Accelerator:
    """An `Accelerator` for one run. accelerate keeps one mixed-precision setting per process and refuses
    another, but a notebook, the studio or a benchmark trains with several in turn; a run that asks for another
    one starts that setting afresh (as transformers' `TrainingArguments` does), keeping the processes' state."""
    if AcceleratorState._shared_state.get("_mixed_precision", mixed_precision) != mixed_precision:
        AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(mixed_precision=mixed_precision, gradient_accumulation_steps=grad_accum_steps)


def train(
    model: nn.Module,
    train_data: Dataset,
    loss_fn: Callable[[nn.Module, Any], torch.Tensor],
    *,
    batch_size: int = 32,
    epochs: int = 1,
    max_steps: int | None = None,
    lr: float = 1e-3,
    optimizer: str | OptimizerFactory = "adamw",
    weight_decay: float = 0.0,
    param_groups: Callable[[nn.Module], list[dict]] | None = None,
    warmup_steps: int | float = 0,
    grad_accum_steps: int = 1,
    max_grad_norm: float | None = None,
    mixed_precision: str = "auto",
    collate_fn: Callable | None = None,
    num_workers: int = 0,
    eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    eval_every: int | None = None,
    callbacks: Sequence[Callback] = (),
    output_dir: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    keep_checkpoints: int = 2,
    resume: bool | str | os.PathLike = False,
    overwrite: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> TrainResult:
    """Train the parameters of `model` that have `requires_grad`, in place.

    Works unchanged in one process and under `accelerate launch` (DDP); checkpoints, callbacks and the
    progress bar live on the main process. A run stopped by a callback, or killed, and then resumed from its
    checkpoint ends with the same parameters as an uninterrupted run: model tensors, optimizer, scheduler, RNG
    states and the position in the epoch are all restored, and the epoch's shuffle order depends only on
    `(seed, epoch)`. Random data augmentation is exact too: each sample is loaded under RNGs seeded from
    `(seed, epoch, index)`, which holds with `num_workers=0` and, since workers get the same per-sample seeds,
    with worker processes as well. Randomness drawn in `collate_fn` (e.g. mixup) is not replayed exactly,
    because the loader prefetches one batch with the training process's RNG.

    Args:
        model: the model; frozen parameters (`requires_grad=False`) are never given to the optimizer.
        train_data: a map-style dataset.
        loss_fn: `(model, batch) -> scalar loss`; `batch` is what the DataLoader yields, already on the device.
        batch_size: samples per batch per process.
        epochs: passes over the data (ignored when `max_steps` is given).
        max_steps: total optimizer steps; overrides `epochs`.
        lr: peak learning rate.
        optimizer: `"adamw"`, `"sgd"` (momentum 0.9), or an `OptimizerFactory`
            `(param_groups, lr, weight_decay) -> optimizer` (e.g. an 8-bit AdamW).
        weight_decay: default weight decay.
        param_groups: optional `model -> list of group dicts`, e.g. for per-group learning rates; by default
            one group of all trainable parameters.
        warmup_steps: linear warmup as steps (`int`) or as a fraction of all steps (`float` in `[0, 1)`);
            a cosine decay to 0 follows.
        grad_accum_steps: micro-batches per optimizer step.
        max_grad_norm: clip the gradient norm to this value when given.
        mixed_precision: `"auto"` (bf16 on CUDA when supported, else fp16; `"no"` without CUDA), `"no"`,
            `"fp16"` or `"bf16"`.
        collate_fn: DataLoader collate function.
        num_workers: DataLoader worker processes.
        eval_fn: `model -> metrics`, called in eval mode under `torch.no_grad()` on every process at the end
            of each epoch, at the end of the run, and every `eval_every` steps; gathering across processes
            (`accelerator.gather_for_metrics`) is up to it.
        eval_every: evaluate every this many optimizer steps as well.
        callbacks: `Callback`s, called on the main process.
        output_dir: where `checkpoints/step-000123/` go; `None` writes no checkpoint. The run owns the folder
            while it trains (a `.train.lock` file); a folder holding another run's checkpoints is refused
            unless `resume` continues that run or `overwrite` replaces it.
        checkpoint_every: write a checkpoint every this many steps; one is always written at the end or on
            stop when `output_dir` is set.
        keep_checkpoints: how many of the newest checkpoints to keep.
        resume: `True` resumes from the newest complete checkpoint in `output_dir` (starting fresh when there
            is none; a damaged one is skipped with a warning); a path resumes from that checkpoint. The
            checkpoint's `seed` and total steps must be this run's.
        overwrite: delete the checkpoints of another run in `output_dir` before training.
        seed: seeds the global RNGs (offset per process) and the shuffle order.
        progress: show a tqdm bar on the main process.

    Returns:
        A `TrainResult`.

    Raises:
        ValueError: a setting that would train nothing or NaN (`epochs=0`, `lr=nan`, ...); a loss or
            parameters that became NaN or infinite (naming the step; nothing is saved from it); an output
            folder in use or holding another run; a checkpoint of another run.
    """
    length = ("max_steps", max_steps) if max_steps is not None else ("epochs", epochs)
    for name, count in [
        length,
        ("batch_size", batch_size),
        ("grad_accum_steps", grad_accum_steps),
        ("keep_checkpoints", keep_checkpoints),
        ("checkpoint_every", checkpoint_every),
        ("eval_every", eval_every),
    ]:
        if count is not None:
            check_count(name, count)
    check_number("lr", lr)
    check_number("weight_decay", weight_decay, allow_zero=True)
    if max_grad_norm is not None:
        check_number("max_grad_norm", max_grad_norm)
    accelerator = _accelerator(resolve_mixed_precision(mixed_precision), grad_accum_steps)
    # The run folder is locked until the end, even when training fails.
    with claim_run_folder(output_dir, resume, overwrite, accelerator) as resume_from:
        main = accelerator.is_main_process
        set_seed(seed, device_specific=True)
        root = checkpoint_root(output_dir) if output_dir is not None else None

        groups = trainable_param_groups(model, param_groups)
        trainable = [p for group in groups for p in group["params"]]
        raw_optimizer = build_optimizer(groups, optimizer, lr, weight_decay)
        raw_loader = build_loader(train_data, batch_size, seed, collate_fn, num_workers)
        sampler = raw_loader.sampler
        wrapped, opt, loader = accelerator.prepare(model, raw_optimizer, raw_loader)
        batches_per_epoch = len(loader)
        if batches_per_epoch == 0:
            raise ValueError("train_data yields no batch")
        steps_per_epoch = math.ceil(batches_per_epoch / grad_accum_steps)
        total_steps = int(max_steps) if max_steps is not None else int(epochs) * steps_per_epoch
        # Stepped by hand once per optimizer step: accelerate's prepared scheduler would step once per process.
        scheduler = warmup_cosine_scheduler(
            raw_optimizer, resolve_warmup(warmup_steps, total_steps), total_steps
        )

        step, epoch, consumed = 0, 0, 0
        last_checkpoint = None
        if resume_from is not None:
            expected = {"seed": seed, "total_steps": total_steps}
            saved = restore_run(resume_from, accelerator, wrapped, opt, scheduler, expected)
            step, epoch, consumed = saved["step"], saved["epoch"], saved["batches_consumed"]
            if consumed >= batches_per_epoch:
                epoch, consumed = epoch + 1, 0
            last_checkpoint = str(resume_from["path"])

        callback = CallbackList(callbacks, enabled=main)
        state = TrainState(step=step, total_steps=total_steps, epoch=epoch, lr=scheduler.get_last_lr()[0])
        result = TrainResult(steps=step, last_checkpoint=last_checkpoint)
        bar = tqdm(
            total=total_steps, initial=step, disable=not (progress and main), desc="train", dynamic_ncols=True
        )

        def set_mode(training: bool) -> None:
            inner = accelerator.unwrap_model(wrapped)
            train_mode(inner, training)
            # Only the wrapper's own flag: train_mode already chose which inner modules train.
            wrapped.training = training

        def evaluate() -> None:
            set_mode(False)
            with torch.no_grad():
                metrics = dict(eval_fn(wrapped))
            set_mode(True)
            result.evals.append({"step": step, "epoch": epoch, **metrics})
            callback("on_evaluate", state, metrics)

        def checkpoint() -> str:
            # On every process, which hold the same parameters, so that all of them stop together.
            check_finite_tensors(accelerator.unwrap_model(wrapped), step)
            rng = [capture_rng_state()]
            if accelerator.num_processes > 1:
                rng = gather_object(rng)
            path = root / f"step-{step:06d}"
            if main:
                position = {
                    "step": step,
                    "epoch": epoch,
                    "batches_consumed": consumed,
                    "seed": seed,
                    "total_steps": total_steps,
                }
                unwrapped = accelerator.unwrap_model(wrapped)
                save_checkpoint(root, step, unwrapped, opt, scheduler, rng, position, accelerator.scaler)
                prune_checkpoints(root, keep_checkpoints, step)
                callback("on_checkpoint", state, str(path))
            accelerator.wait_for_everyone()
            return str(path)

        set_mode(True)
        callback("on_train_begin", state)
        start_time, start_step = time.perf_counter(), step
        micro_losses: list[torch.Tensor] = []
        stop = finished = step >= total_steps
        while not (stop or finished):
            sampler.set_epoch(epoch)
            raw_loader.dataset.set_epoch(epoch)
            epoch_loader = skip_first_batches(loader, consumed) if consumed else loader
            epoch_loader.set_epoch(epoch)
            try:
                for batch in epoch_loader:
                    with accelerator.accumulate(wrapped):
                        loss = loss_fn(wrapped, batch)
                        accelerator.backward(loss)
                        micro_losses.append(loss.detach().float().reshape(()))
                        step_lr = scheduler.get_last_lr()[0]
                        if accelerator.sync_gradients and max_grad_norm is not None:
                            accelerator.clip_grad_norm_(trainable, max_grad_norm)
                        opt.step()  # a no-op until the last micro-batch of the accumulation window
                        if accelerator.sync_gradients and not accelerator.optimizer_step_was_skipped:
                            scheduler.step()
                        opt.zero_grad(set_to_none=True)
                    consumed += 1
                    if not accelerator.sync_gradients:
                        continue

                    step += 1
                    step_loss = torch.stack(micro_losses).mean()
                    micro_losses.clear()
                    if accelerator.num_processes > 1:
                        step_loss = accelerator.reduce(step_loss, reduction="mean")
                    elapsed = time.perf_counter() - start_time
                    state.step, state.epoch, state.loss, state.lr = step, epoch, step_loss.item(), step_lr
                    check_loss(state.loss, step, step_lr)  # the same reduced loss on every process
                    state.elapsed_s = elapsed
                    state.eta_s = elapsed / (step - start_step) * (total_steps - step)
                    result.history.append({"step": step, "epoch": epoch, "loss": state.loss, "lr": step_lr})
                    bar.update(1)
                    bar.set_postfix(loss=f"{state.loss:.4f}", lr=f"{step_lr:.2e}", refresh=False)
                    callback("on_step_end", state)
                    if main and state.should_stop:
                        accelerator.set_trigger()
                    # A collective, so every process leaves the loop at the same step.
                    stop = accelerator.check_trigger()
                    finished = step >= total_steps
                    end_of_epoch = consumed >= batches_per_epoch
                    due = (eval_every and step % eval_every == 0) or end_of_epoch or finished
                    if eval_fn is not None and not stop and due:
                        evaluate()
                    if root is not None and (
                        stop or finished or (checkpoint_every and step % checkpoint_every == 0)
                    ):
                        result.last_checkpoint = checkpoint()
                    if stop or finished:
                        break
            finally:
                # Breaking out of accelerate's loader skips its own cleanup, which would leave it registered as
                # the active dataloader and confuse gradient sync in a later run in this process.
                if hasattr(epoch_loader, "end"):
                    epoch_loader.end()
            if not (stop or finished):
                epoch, consumed = epoch + 1, 0

        bar.close()
        if result.history:
            # Also without checkpoints: the caller saves these parameters as its artifact next.
            check_finite_tensors(accelerator.unwrap_model(wrapped), step)
        result.steps = step
        result.stopped = bool(stop)
        state.should_stop = bool(stop)
        callback("on_train_end", state)
        accelerator.wait_for_everyone()
        # Drops accelerate's autocast wrapper from the caller's model (CUDA mixed precision) and its references.
        accelerator.unwrap_model(wrapped, keep_fp32_wrapper=False)
        accelerator.free_memory()
        return result
