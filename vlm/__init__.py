"""Few-shot CLIP classification on open_clip: zero-shot, linear probe, CoOp, CoCoOp, CLIP-Adapter,
Tip-Adapter, Tip-Adapter-F.

Each method lives in its own folder and registers itself in `studio.core`'s registry (domain `"vlm"`, task
`"fewshot"`); `FewShotCLIP(method=...)` finds it there.

Example:
    >>> import vlm
    >>> clf = vlm.FewShotCLIP("studio/shapes-clip", method="tip_adapter")  # or any open_clip name + tag
    >>> clf.fit(images, labels, classnames).predict(test_images)
"""

from .base import FewShotSpec
from .classifier import FewShotCLIP
from .clip_adapter import ClipAdapterConfig
from .cocoop import CoCoOpConfig
from .coop import CoOpConfig
from .linear_probe import ClipLinearProbeConfig
from .models import create_clip
from .tip_adapter import TipAdapterConfig, TipAdapterFConfig
from .zero_shot import ZeroShotConfig

__all__ = [
    "ClipAdapterConfig",
    "ClipLinearProbeConfig",
    "CoCoOpConfig",
    "CoOpConfig",
    "FewShotCLIP",
    "FewShotSpec",
    "TipAdapterConfig",
    "TipAdapterFConfig",
    "ZeroShotConfig",
    "create_clip",
]
