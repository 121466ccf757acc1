"""The method core: configs, registry, target matching, adapter layers (LoRA among them, which every domain
uses), inject/freeze, save/load, merge.

Depends on torch and safetensors only; domain packages (`vision`, `vlm`, `diffusion`) register their
methods here.
"""

from .assets import assets_dir, is_asset_name, resolve_asset
from .clip_spec import join_clip_spec, open_clip_weights, split_clip_spec
from .config import AdapterConfig, MethodConfig, check_range, conform, hfield
from .fingerprint import library_version, weights_fingerprint
from .inject import classifier_name, disable_adapters, inject, resolve_modules_to_save
from .io import (
    atomic_path,
    check_finite,
    load_adapter,
    read_adapter_config,
    read_tensors,
    reading,
    save_adapter,
    save_tensors,
    write_adapter_config,
    write_json,
)
from .layer import AdapterLayer, adapter_layers, adapter_parameter_names
from .lora import LoRALinear
from .merge import merge, remove_adapter, unmerge
from .modes import train_mode
from .registry import (
    Method,
    get_method,
    list_methods,
    method_configs,
    method_names,
    method_of,
    register_method,
)
from .report import parameter_report
from .state import AdapterState, adapter_state_dict, get_adapter_state
from .targets import find_targets, replace_module

__all__ = [
    "AdapterConfig",
    "AdapterLayer",
    "AdapterState",
    "LoRALinear",
    "Method",
    "MethodConfig",
    "adapter_layers",
    "adapter_parameter_names",
    "adapter_state_dict",
    "assets_dir",
    "atomic_path",
    "check_finite",
    "check_range",
    "classifier_name",
    "conform",
    "disable_adapters",
    "find_targets",
    "get_adapter_state",
    "get_method",
    "hfield",
    "inject",
    "is_asset_name",
    "join_clip_spec",
    "library_version",
    "list_methods",
    "load_adapter",
    "merge",
    "method_configs",
    "method_names",
    "method_of",
    "open_clip_weights",
    "parameter_report",
    "read_adapter_config",
    "read_tensors",
    "reading",
    "register_method",
    "remove_adapter",
    "replace_module",
    "resolve_asset",
    "resolve_modules_to_save",
    "save_adapter",
    "save_tensors",
    "split_clip_spec",
    "train_mode",
    "unmerge",
    "weights_fingerprint",
    "write_adapter_config",
    "write_json",
]
