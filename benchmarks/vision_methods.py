"""Cost of every vision method on one model, as ratios measured in one run.

For each method: trainable parameters; train-step time and training memory as ratios to full
fine-tuning (and step time to HF peft's LoRA, measured in the same run as the outside reference);
inference time as a ratio to the base model. Step and forward times are interleaved round by round over
the methods, so that load on the machine affects them alike; the table shows medians.

Training memory is what a step adds to the weights: on CUDA the peak allocated during the step; on CPU,
exactly, the tensors autograd saves for backward (activations) plus gradients and optimizer state.

    python benchmarks/vision_methods.py                      # vit_small_patch16_224, batch 8 at 224, CPU
    python benchmarks/vision_methods.py --model vit_base_patch16_224 --rounds 5
    python benchmarks/vision_methods.py --model convnext_tiny --params  # counts only, any timm family
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from measure import step_memory  # benchmarks/measure.py, beside this script

import vision
from studio.core import inject, merge, method_configs, train_mode

METHODS = ["full", "linear_probe", "bitfit", "lora", "peft_lora", "vpt", "vpt_shallow", "adaptformer", "ssf"]


def build(model_name: str, method: str, img_size: int | None = 224, num_classes: int = 10) -> torch.nn.Module:
    """The model with `method` applied (`base` for none, `peft_lora` for HF peft's LoRA on qkv).

    `img_size=None` keeps the architecture's own (ConvNeXt takes no `img_size`).
    """
    torch.manual_seed(0)
    size = {} if img_size is None else {"img_size": img_size}
    model = vision.create_model(model_name, num_classes=num_classes, **size)
    if method == "peft_lora":
        import peft

        config = peft.LoraConfig(r=8, lora_alpha=8, target_modules=["qkv"], modules_to_save=["head"])
        return peft.get_peft_model(model, config)
    if method == "vpt_shallow":
        return inject(model, vision.VPTConfig(deep=False))
    if method != "base":
        inject(model, method_configs("vision")[method]())
    return model


class Trainer:
    """One method's model, optimizer and a fixed batch."""

    def __init__(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
        self.model, self.x, self.y = model, x, y
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=1e-4)
        train_mode(model)

    def step(self) -> None:
        """One optimizer step."""
        torch.nn.functional.cross_entropy(self.model(self.x), self.y).backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def memory(self) -> int:
        """Bytes a training step holds beyond the weights (see the module docstring)."""
        loss = lambda: torch.nn.functional.cross_entropy(self.model(self.x), self.y)  # noqa: E731
        return step_memory(self.model, self.params, self.optimizer, loss, self.x.is_cuda)


def print_parameter_counts(model_name: str) -> None:
    """Trainable parameters of every method on `model_name` at its own input size, or why `inject` refuses it."""
    print(f"{model_name}: trainable parameters (10 classes)")
    for method in METHODS:
        try:
            model = build(model_name, method, img_size=None)
        except ValueError as err:
            print(f"{method:<14}{'refused':>12}  {err}")
            continue
        print(f"{method:<14}{sum(p.numel() for p in model.parameters() if p.requires_grad):>12,}")


def timed(fn) -> float:
    """Seconds one call of `fn` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vit_small_patch16_224")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--params", action="store_true", help="print trainable parameter counts only")
    args = parser.parse_args()
    if args.params:
        print_parameter_counts(args.model)
        return

    x = torch.randn(args.batch, 3, args.size, args.size, device=args.device)
    y = torch.randint(0, 10, (args.batch,), device=args.device)
    trainers = {m: Trainer(build(args.model, m, args.size).to(args.device), x, y) for m in METHODS}
    memory = {m: t.memory() for m, t in trainers.items()}  # also the warm-up step
    steps: dict[str, list[float]] = {m: [] for m in METHODS}
    for _ in range(args.rounds):
        for method, trainer in trainers.items():
            steps[method].append(timed(trainer.step))
    step = {m: statistics.median(t) for m, t in steps.items()}
    trainable = {m: sum(p.numel() for p in t.params) for m, t in trainers.items()}
    del trainers

    models = {m: build(args.model, m, args.size) for m in ["base", "vpt", "adaptformer", "ssf", "lora"]}
    models["ssf merged"] = merge(build(args.model, "ssf", args.size))
    models["ssf merged+unloaded"] = merge(build(args.model, "ssf", args.size), unload=True)
    models["lora merged"] = merge(build(args.model, "lora", args.size))
    forwards: dict[str, list[float]] = {m: [] for m in models}
    with torch.inference_mode():
        for model in models.values():
            model.to(args.device).eval()(x)
        for _ in range(args.rounds * 2):
            for name, model in models.items():
                forwards[name].append(timed(lambda model=model: model(x)))
    infer = {m: statistics.median(t) / statistics.median(forwards["base"]) for m, t in forwards.items()}

    print(f"{args.model}, random weights, batch {args.batch} at {args.size}px on {args.device} "
          f"({torch.get_num_threads()} threads), medians of {args.rounds} interleaved rounds")  # fmt: skip
    print(
        f"{'method':<14}{'trainable':>12}{'step/full':>11}{'step/peft':>11}{'memory/full':>13}{'infer/base':>12}"
    )
    for m in METHODS:
        ratio = f"{infer[m]:.3f}" if m in infer else ""
        print(
            f"{m:<14}{trainable[m]:>12,}{step[m] / step['full']:>11.2f}{step[m] / step['peft_lora']:>11.2f}"
            f"{memory[m] / memory['full']:>13.2f}{ratio:>12}"
        )
    for m in ("ssf merged", "ssf merged+unloaded", "lora merged"):
        print(f"{m:<26}inference / base: {infer[m]:.3f}")
    print(
        f"absolute: full step {step['full'] * 1000:.0f} ms, full training memory {memory['full'] / 2**20:.0f} MiB, "
        f"base forward {statistics.median(forwards['base']) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
