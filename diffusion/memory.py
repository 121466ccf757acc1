"""The memory options every diffusion trainer shares (`MemoryOptions`) and the context that applies them.

What they save, on one step of SD 1.5 at 512 px (`benchmarks/diffusion_memory.py` counts it): frozen weights
stored in the training dtype halve the largest term; gradient checkpointing keeps only block inputs for
backward; an 8-bit AdamW stores its two moments in a quarter of the bytes; offloading keeps the VAE and the
text encoders, once their outputs are cached, in host memory. Attention is diffusers' default processor,
PyTorch's `scaled_dot_product_attention` (memory-efficient or flash kernels where the device has them).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from studio.engine import resolve_mixed_precision

# The GPU-memory presets: what each turns on, from the most memory to the least. Below 12 GB nothing more is
# on offer (diffusers' examples reach 8 GB only with DeepSpeed's CPU offload of the optimizer).
GPU_MEMORY_PRESETS: dict[str, dict[str, bool]] = {
    "24": {"gradient_checkpointing": False, "adamw8bit": False, "offload": False},
    "16": {"gradient_checkpointing": True, "adamw8bit": True, "offload": False},
    "12": {"gradient_checkpointing": True, "adamw8bit": True, "offload": True},
    "8": {"gradient_checkpointing": True, "adamw8bit": True, "offload": True},
    "none": {"gradient_checkpointing": False, "adamw8bit": False, "offload": False},
}
GPU_MEMORY_CHOICES = ("auto", *GPU_MEMORY_PRESETS)
OPTIMIZERS = ("adamw", "adamw8bit")
FROZEN_DTYPES = ("train", "fp32")


def bitsandbytes_available() -> bool:
    """Whether `bitsandbytes` (the `memory` extra) is importable."""
    return importlib.util.find_spec("bitsandbytes") is not None


def auto_gpu_memory() -> str:
    """The preset for this machine: by the first CUDA device's memory, `"none"` without CUDA."""
    if not torch.cuda.is_available():
        return "none"
    gib = torch.cuda.get_device_properties(0).total_memory / 2**30
    return next((name for name in ("24", "16", "12") if gib >= int(name) - 1), "8")


@dataclass(frozen=True)
class MemoryOptions:
    """How a diffusion training run saves GPU memory; options left at None take the `gpu_memory` preset's.

    Args:
        gpu_memory: the memory to fit in: `"24"`, `"16"`, `"12"`, `"8"` (GB), `"none"` (no saving beyond
            `frozen_dtype`) or `"auto"` (by the CUDA device's memory; `"none"` on the CPU).
        frozen_dtype: `"train"` stores the frozen weights (UNet, VAE, text encoders, a control's frozen parts)
            in the training dtype, fp16/bf16 under mixed precision (a no-op without it); `"fp32"` keeps them.
            Trainable parameters and optimizer state stay fp32 either way.
        gradient_checkpointing: recompute the UNet's, the control's and (when the gradient passes through it)
            the text encoder's activations in backward instead of storing them.
        optimizer: `"adamw"` or `"adamw8bit"` (needs `bitsandbytes`: `pip install adaptation-studio[memory]`);
            the presets take the 8-bit one only when it is installed.
        offload: keep the VAE and the text encoders in host memory while training, once their outputs are
            cached (moved to the device for previews only).

    Raises:
        ValueError: an unknown preset, dtype or optimizer; `"adamw8bit"` without `bitsandbytes` installed.
    """

    gpu_memory: str = "auto"
    frozen_dtype: str = "train"
    gradient_checkpointing: bool | None = None
    optimizer: str | None = None
    offload: bool | None = None

    def __post_init__(self) -> None:
        for name, value, choices in [
            ("gpu_memory", self.gpu_memory, GPU_MEMORY_CHOICES),
            ("frozen_dtype", self.frozen_dtype, FROZEN_DTYPES),
            ("optimizer", self.optimizer, (None, *OPTIMIZERS)),
        ]:
            if value not in choices:
                shown = ", ".join(repr(c) for c in choices if c is not None)
                raise ValueError(f"memory option {name}={value!r} is not one of {shown}")
        if self.optimizer == "adamw8bit" and not bitsandbytes_available():
            raise ValueError(
                "optimizer 'adamw8bit' needs bitsandbytes, which is not installed; "
                "pip install 'adaptation-studio[memory]', or use optimizer 'adamw'"
            )

    @classmethod
    def of(cls, value: MemoryOptions | str | None) -> MemoryOptions:
        """`value` as options: a preset name (`"16"`) gives that preset, None the automatic one."""
        if isinstance(value, MemoryOptions):
            return value
        return cls() if value is None else cls(gpu_memory=str(value))

    def resolved(self) -> ResolvedMemory:
        """The concrete settings on this machine (the preset read, `"auto"` decided)."""
        name = auto_gpu_memory() if self.gpu_memory == "auto" else self.gpu_memory
        preset = GPU_MEMORY_PRESETS[name]
        optimizer = self.optimizer
        if optimizer is None:
            optimizer = "adamw8bit" if preset["adamw8bit"] and bitsandbytes_available() else "adamw"
        return ResolvedMemory(
            frozen_in_train_dtype=self.frozen_dtype == "train",
            gradient_checkpointing=_pick(self.gradient_checkpointing, preset["gradient_checkpointing"]),
            optimizer=optimizer,
            offload=_pick(self.offload, preset["offload"]),
        )


def _pick(value: bool | None, default: bool) -> bool:
    return default if value is None else bool(value)


@dataclass(frozen=True)
class ResolvedMemory:
    """`MemoryOptions` decided for this machine (see there)."""

    frozen_in_train_dtype: bool
    gradient_checkpointing: bool
    optimizer: str
    offload: bool


@dataclass
class MemoryPlan:
    """What a trainer hands on from `memory_savings`.

    Args:
        optimizer: the engine's `optimizer` argument (a name, or a factory for the 8-bit AdamW).
        preview: wraps a preview's `sample_fn` so it runs with the offloaded modules back on the device and
            under autocast in the training dtype when the run trains in mixed precision.
    """

    optimizer: str | Callable[..., torch.optim.Optimizer]
    preview: Callable[[Callable], Callable]


def adamw8bit(groups: list[dict], lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """bitsandbytes' 8-bit AdamW over `groups` (the engine's optimizer factory signature)."""
    import bitsandbytes

    return bitsandbytes.optim.AdamW8bit(groups, lr=lr, weight_decay=weight_decay)


def _unique(modules: Sequence[nn.Module | None]) -> list[nn.Module]:
    seen: dict[int, nn.Module] = {}
    for module in modules:
        if module is not None:
            seen.setdefault(id(module), module)
    return list(seen.values())


def check_training_precision(pipe, mixed_precision: str) -> None:
    """Refuse a run that would compute in fp32 (`mixed_precision` "no", or "auto" without CUDA) on a pipeline
    loaded in half precision, whose weights and cached inputs would not match; before any work.

    Raises:
        ValueError: saying which dtype to load the pipeline in, or which mixed precision to train with.
    """
    dtype = pipe.unet.dtype
    if dtype != torch.float32 and resolve_mixed_precision(mixed_precision) == "no":
        where = " (without CUDA)" if mixed_precision == "auto" else ""
        raise ValueError(
            f"the pipeline is loaded in {dtype} but mixed_precision={mixed_precision!r}{where} trains in float32: "
            "load it in float32 (load_pipeline's default torch_dtype), or train with mixed_precision='bf16' or "
            "'fp16' (on a GPU)"
        )


def _train_dtype(mixed_precision: str) -> torch.dtype | None:
    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(resolve_mixed_precision(mixed_precision))


def _trainable_in_fp32(modules: list[nn.Module]) -> None:
    """Give the trainable half-precision parameters of `modules` (those the gradient passes through; a VAE
    that still says `requires_grad` is not trained) fp32 storage, as diffusers' trainers do
    (`cast_training_params`): an optimizer step much smaller than the weight would round away in fp16/bf16, and
    fp16 gradients cannot be unscaled. They are the adapter's, so they stay fp32 (and are saved so)."""
    for module in modules:
        for p in module.parameters():
            if p.requires_grad and p.dtype != torch.float32 and p.is_floating_point():
                p.data = p.data.float()


@contextmanager
def _frozen_in(
    modules: list[nn.Module], unused: list[nn.Module], dtype: torch.dtype | None
) -> Iterator[None]:
    """The fp32 parameters of `modules` that do not train, and all of those of `unused` (which training does
    not call), stored in `dtype` inside the block; their fp32 values come back exactly afterwards (kept in host
    memory meanwhile)."""
    originals: dict[nn.Parameter, torch.Tensor] = {}
    if dtype is not None:
        for module in modules:
            for p in module.parameters():
                frozen = not p.requires_grad or any(module is m for m in unused)
                if frozen and p.dtype == torch.float32 and p not in originals:
                    originals[p] = p.data if p.device.type == "cpu" else p.data.cpu()
                    p.data = p.data.to(dtype)
    try:
        yield
    finally:
        for p, value in originals.items():
            p.data = value.to(p.device)


# The switches of diffusers' models, then transformers' (newer, older names): (is on, enable, its keyword
# for checkpoint options, disable). transformers' reentrant default would need inputs that require grad.
_CHECKPOINTING_SWITCHES = [
    ("is_gradient_checkpointing", "enable_gradient_checkpointing", None, "disable_gradient_checkpointing"),
    (
        "is_activation_checkpointing",
        "activation_checkpointing_enable",
        "activation_checkpointing_kwargs",
        "activation_checkpointing_disable",
    ),
    (
        "is_gradient_checkpointing",
        "gradient_checkpointing_enable",
        "gradient_checkpointing_kwargs",
        "gradient_checkpointing_disable",
    ),
]


@contextmanager
def gradient_checkpointing(modules: Sequence[nn.Module | None], on: bool = True) -> Iterator[None]:
    """Gradient checkpointing on, inside the block, for those of `modules` that support it (diffusers' and
    transformers' models; a T2I-Adapter, for one, does not) and had it off.

    Args:
        modules: the modules (None entries are skipped).
        on: False makes the block change nothing.
    """
    switched = []
    for module in _unique(modules) if on else []:
        switch = next((s for s in _CHECKPOINTING_SWITCHES if hasattr(module, s[1])), None)
        supported = getattr(module, "_supports_gradient_checkpointing", True)
        if switch is None or not supported or getattr(module, switch[0]):
            continue
        is_on, enable, keyword, disable = switch
        kwargs = {keyword: {"use_reentrant": False}} if keyword else {}
        getattr(module, enable)(**kwargs)
        switched.append((module, disable))
    try:
        yield
    finally:
        for module, disable in switched:
            getattr(module, disable)()


def _device_of(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


@contextmanager
def memory_savings(
    options: MemoryOptions | str | None,
    mixed_precision: str,
    *,
    frozen: Sequence[nn.Module | None],
    backward: Sequence[nn.Module | None],
    offload: Sequence[nn.Module | None],
    device: Callable[[], torch.device],
) -> Iterator[MemoryPlan]:
    """Apply the memory options for the duration of a training run; everything is as before afterwards.

    Args:
        options: the run's `MemoryOptions` (a preset name or None: see `MemoryOptions.of`).
        mixed_precision: the run's mixed precision (`"auto"`, `"no"`, `"fp16"`, `"bf16"`).
        frozen: modules whose frozen parameters may be stored in the training dtype.
        backward: modules the gradient passes through (gradient checkpointing).
        offload: modules whose outputs are cached (training does not call them), kept in host memory while
            training.
        device: `() -> the training device`, asked when a preview runs.

    Yields:
        The `MemoryPlan` (the engine's optimizer, the preview wrapper).

    Raises:
        ValueError: a bad option, or the 8-bit AdamW without `bitsandbytes`.
    """
    settings = MemoryOptions.of(options).resolved()
    autocast = _train_dtype(mixed_precision)
    dtype = autocast if settings.frozen_in_train_dtype else None
    parked = _unique(offload) if settings.offload else []
    homes = {module: _device_of(module) for module in parked}

    def preview(sample_fn: Callable) -> Callable:
        def sample():
            target = device()
            for module in parked:
                module.to(target)
            try:
                with torch.autocast(target.type, dtype=autocast, enabled=autocast is not None):
                    return sample_fn()
            finally:
                for module in parked:
                    module.to("cpu")

        return sample

    optimizer = adamw8bit if settings.optimizer == "adamw8bit" else "adamw"
    _trainable_in_fp32(_unique(backward))
    with (
        _frozen_in(_unique(frozen), _unique(offload), dtype),
        gradient_checkpointing(backward, settings.gradient_checkpointing),
    ):
        for module in parked:
            module.to("cpu")
        try:
            yield MemoryPlan(optimizer=optimizer, preview=preview)
        finally:
            for module, home in homes.items():
                module.to(home)
