"""What a benchmark measures of one training step, shared by the benchmark scripts."""

from __future__ import annotations

from collections.abc import Callable

import torch


def step_memory(
    model: torch.nn.Module,
    params: list[torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[], torch.Tensor],
    cuda: bool,
) -> int:
    """Bytes one optimizer step holds beyond the weights.

    On CUDA the peak allocated during the step; on the CPU, exactly, the tensors autograd saves for backward
    (activations) plus gradients and optimizer state.

    Args:
        model: the model (its parameters' storages are not counted as saved tensors).
        params: the trainable parameters.
        optimizer: their optimizer.
        loss_fn: `() -> loss` of a fixed batch.
        cuda: whether the model runs on CUDA.

    Returns:
        The bytes.
    """
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        loss_fn().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    loss, activations = saved_for_backward(model, loss_fn)
    loss.backward()
    grads = sum(p.grad.nbytes for p in params if p.grad is not None)
    optimizer.step()
    state = sum(t.nbytes for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t))
    optimizer.zero_grad(set_to_none=True)
    return activations + grads + state


def saved_for_backward(
    model: torch.nn.Module, loss_fn: Callable[[], torch.Tensor]
) -> tuple[torch.Tensor, int]:
    """The loss of `loss_fn()` and the bytes of the tensors autograd saved for its backward, each storage once,
    the model's parameters not counted. Works on the meta device too (storages told apart by identity, not
    address), so the activations of a full-size model are counted without allocating them.

    Args:
        model: the model whose parameters are not activations.
        loss_fn: `() -> loss`.

    Returns:
        `(loss, bytes)`.
    """
    weights = {p.untyped_storage()._cdata for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage._cdata not in weights:
            saved[storage._cdata] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_fn()
    return loss, sum(saved.values())
