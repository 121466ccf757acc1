"""Few-shot CLIP classification on open_clip: zero-shot, linear probe, CoOp, Tip-Adapter, Tip-Adapter-F.

Example:
    >>> import vlm
    >>> clf = vlm.FewShotCLIP("studio/shapes-clip", method="tip_adapter")  # or any open_clip name + tag
    >>> clf.fit(images, labels, classnames).predict(test_images)
"""

from .classifier import FewShotCLIP
from .methods import METHODS
from .models import create_clip

__all__ = ["METHODS", "FewShotCLIP", "create_clip"]
