"""Cost of every vision method on one model, as ratios measured in one run.

For each method: trainable parameters; train-step time and peak training memory as ratios to full
fine-tuning; inference time as a ratio to the base model. HF peft's LoRA is measured in the same run as
the outside reference. Each training measurement runs in a fresh process so that peak memory is its own.

    python benchmarks/vision_methods.py                      # vit_small_patch16_224, batch 8 at 224, CPU
    python benchmarks/vision_methods.py --model vit_base_patch16_224 --steps 10
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import time

import torch

METHODS = ["full", "linear_probe", "bitfit", "lora", "peft_lora", "vpt", "vpt_shallow", "adaptformer", "ssf"]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _build(model_name: str, method: str, num_classes: int = 10):
    import vision
    from studio.core import inject

    torch.manual_seed(0)
    model = vision.create_model(model_name, num_classes=num_classes)
    if method == "peft_lora":
        import peft

        model = peft.get_peft_model(
            model, peft.LoraConfig(r=8, lora_alpha=8, target_modules=["qkv"], modules_to_save=["head"])
        )
    elif method == "vpt_shallow":
        inject(model, vision.VPTConfig(deep=False))
    elif method != "base":
        inject(model, vision.METHOD_CONFIGS[method]())
    return model


def measure_training(model_name: str, method: str, batch: int, size: int, steps: int) -> dict:
    """Median step time and peak memory growth while training `method` (run in a fresh process)."""
    from studio.core import train_mode

    model = _build(model_name, method)
    train_mode(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 10, (batch,))
    rss_before = _rss_bytes()
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i >= 2:  # the first steps allocate optimizer state and warm up kernels
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    return {
        "method": method,
        "trainable": sum(p.numel() for p in params),
        "step_s": statistics.median(times),
        "peak_bytes": peak,
    }


def measure_inference(model_name: str, batch: int, size: int, rounds: int) -> dict[str, float]:
    """Median forward time of the base model, each adapted model and merged SSF, interleaved round by round."""
    from studio.core import merge

    models = {name: _build(model_name, name).eval() for name in ["base", "vpt", "adaptformer", "ssf", "lora"]}
    models["ssf_merged"] = merge(_build(model_name, "ssf"))
    models["ssf_merged_unloaded"] = merge(_build(model_name, "ssf"), unload=True)
    models["lora_merged"] = merge(_build(model_name, "lora"))
    for model in models.values():
        model.eval()
    x = torch.randn(batch, 3, size, size)
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for model in models.values():
            model(x)
        for _ in range(rounds):
            for name, model in models.items():
                start = time.perf_counter()
                model(x)
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vit_small_patch16_224")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    context = mp.get_context("spawn")
    rows = []
    for method in METHODS:
        with context.Pool(1) as pool:
            rows.append(pool.apply(measure_training, (args.model, method, args.batch, args.size, args.steps)))
    full = next(r for r in rows if r["method"] == "full")
    peft_step = next(r for r in rows if r["method"] == "peft_lora")["step_s"]
    inference = measure_inference(args.model, args.batch, args.size, args.rounds)
    base_infer = inference["base"]

    print(f"{args.model}, random weights, batch {args.batch} at {args.size}px, {torch.get_num_threads()} threads, "
          f"median of {args.steps} steps / {args.rounds} forward rounds")  # fmt: skip
    print(
        f"{'method':<14}{'trainable':>12}{'step vs full':>14}{'step vs peft':>14}{'peak mem vs full':>18}{'infer vs base':>15}"
    )
    for row in rows:
        infer = inference.get(row["method"])
        print(
            f"{row['method']:<14}{row['trainable']:>12,}{row['step_s'] / full['step_s']:>14.2f}"
            f"{row['step_s'] / peft_step:>14.2f}{row['peak_bytes'] / full['peak_bytes']:>18.2f}"
            f"{'' if infer is None else f'{infer / base_infer:.3f}':>15}"
        )
    for name in ("ssf_merged", "ssf_merged_unloaded", "lora_merged"):
        print(f"{name:<26}inference vs base: {inference[name] / base_infer:.3f}")
    print(f"absolute: full step {full['step_s'] * 1000:.0f} ms, base forward {base_infer * 1000:.0f} ms")


if __name__ == "__main__":
    main()
