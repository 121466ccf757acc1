"""`train(optimizer=factory)`: an optimizer the engine does not name (the diffusion trainers' 8-bit AdamW)."""

import torch

from studio.engine import train
from tests.engine.ddp_script import make_data, make_model, mse_loss


def test_an_optimizer_factory_gets_the_trainable_groups_and_is_the_one_stepped():
    made = []

    def factory(groups, lr, weight_decay):
        made.append((sum(len(g["params"]) for g in groups), lr, weight_decay))
        return torch.optim.SGD(groups, lr=lr, weight_decay=weight_decay)

    model = make_model()
    model[0].requires_grad_(False)
    before = [p.detach().clone() for p in model.parameters()]
    result = train(
        model, make_data(), mse_loss, batch_size=4, max_steps=3, lr=0.05, weight_decay=0.01,
        optimizer=factory, progress=False,
    )  # fmt: skip
    assert made == [(2, 0.05, 0.01)] and result.steps == 3
    after = list(model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before[:2], after[:2], strict=True))
    assert all(not torch.equal(a, b) for a, b in zip(before[2:], after[2:], strict=True))
