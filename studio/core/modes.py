"""Train/eval mode that respects an adapter's frozen backbone."""

from __future__ import annotations

from torch import nn

from .state import get_adapter_state


def train_mode(model: nn.Module, mode: bool = True) -> nn.Module:
    """Put `model` in training (or eval) mode, keeping a frozen backbone in eval mode when the adapter asks.

    Methods such as VPT train their prompts against a backbone that runs without dropout or drop-path
    (`frozen_eval=True` in the config). Every module whose subtree holds no trainable parameter then stays in
    eval mode; modules that own trainable parameters (adapter layers, the head) train normally.

    Args:
        model: a model, with or without an injected adapter.
        mode: `True` for training, `False` for evaluation.

    Returns:
        The same model.
    """
    model.train(mode)
    state = get_adapter_state(model)
    if not mode or state is None or not state.config.frozen_eval:
        return model
    for module in model.modules():
        if not any(p.requires_grad for p in module.parameters()):
            module.eval()
    return model
