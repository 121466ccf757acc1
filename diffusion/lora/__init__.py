"""LoRA / DreamBooth-LoRA for Stable-Diffusion pipelines: low-rank updates of the attention projections, saved
in diffusers' and kohya's layouts."""

from studio.core import register_method

from ..artifacts import ArtifactSpec
from .config import DiffusionLoRAConfig
from .format import KOHYA_FILE, LORA_FILE, is_lora_artifact, read_lora, save_lora
from .model import apply_diffusion_lora, text_encoder_config
from .sampling import export_merged_lora_unet, lora_artifacts_applied, lora_loaded
from .train import train_lora

register_method(
    DiffusionLoRAConfig,
    apply_diffusion_lora,
    domain="diffusion",
    task="personalize",
    train=train_lora,
    spec=ArtifactSpec(
        recognize=is_lora_artifact,
        loads_with=f"pipe.load_lora_weights(folder) ({LORA_FILE}; {KOHYA_FILE} for A1111/ComfyUI)",
        applied=lora_artifacts_applied,
        merged_unet=export_merged_lora_unet,
        changes_layers=True,
    ),
)

__all__ = [
    "train_lora",
    "KOHYA_FILE",
    "LORA_FILE",
    "DiffusionLoRAConfig",
    "apply_diffusion_lora",
    "export_merged_lora_unet",
    "is_lora_artifact",
    "lora_artifacts_applied",
    "lora_loaded",
    "read_lora",
    "save_lora",
    "text_encoder_config",
]
