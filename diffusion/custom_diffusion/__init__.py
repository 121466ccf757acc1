"""Custom Diffusion: trained cross-attention key/value projections plus a modifier token, in diffusers' format."""

from studio.core import register_method

from ..artifacts import ArtifactSpec
from ..textual_inversion import LOADS_WITH as TOKEN_LOADS_WITH
from .config import CustomDiffusionConfig
from .format import WEIGHTS_FILE, modifier_file, read_custom_diffusion, save_custom_diffusion
from .layer import TrainedCopy
from .model import apply_custom_diffusion, projections
from .sampling import custom_diffusion_applied, is_custom_diffusion_folder
from .train import train_custom_diffusion

register_method(
    CustomDiffusionConfig,
    apply_custom_diffusion,
    domain="diffusion",
    task="personalize",
    train=train_custom_diffusion,
    spec=ArtifactSpec(
        recognize=is_custom_diffusion_folder,
        loads_with=f"pipe.unet.load_attn_procs(folder, weight_name='{WEIGHTS_FILE}', _pipeline=pipe), then each "
        f"modifier token (more tokens: weight_name='learned_embeds-2.safetensors', ...): {TOKEN_LOADS_WITH}",
        applied=custom_diffusion_applied,
        changes_layers=True,
    ),
)

__all__ = [
    "train_custom_diffusion",
    "WEIGHTS_FILE",
    "CustomDiffusionConfig",
    "TrainedCopy",
    "apply_custom_diffusion",
    "custom_diffusion_applied",
    "is_custom_diffusion_folder",
    "modifier_file",
    "projections",
    "read_custom_diffusion",
    "save_custom_diffusion",
]
