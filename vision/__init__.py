"""ViT fine-tuning on timm backbones: VPT (shallow/deep), AdaptFormer, SSF, and the baselines.

```python
import vision
from studio.core import inject, save_adapter
model = vision.create_model("vit_small_patch16_224", num_classes=10, pretrained=False)
inject(model, vision.SSFConfig())
vision.finetune(model, "data/train", "data/val", epochs=3, lr=1e-2)
save_adapter(model, "runs/ssf")
```
"""

from .adaptformer import AdaptFormerConfig
from .baselines import BitFitConfig, FullFinetuneConfig, LinearProbeConfig
from .data import ImageDataset, as_dataset, load_image, scan_image_folder
from .lora import LoRAConfig
from .models import create_model, data_config, image_transform
from .ssf import SSFConfig
from .timm_args import TIMM_ARGS, check_timm_args
from .train import evaluate, finetune
from .vpt import VPTConfig

__all__ = [
    "AdaptFormerConfig",
    "BitFitConfig",
    "FullFinetuneConfig",
    "ImageDataset",
    "LinearProbeConfig",
    "LoRAConfig",
    "SSFConfig",
    "TIMM_ARGS",
    "VPTConfig",
    "as_dataset",
    "check_timm_args",
    "create_model",
    "data_config",
    "evaluate",
    "finetune",
    "image_transform",
    "load_image",
    "scan_image_folder",
]
