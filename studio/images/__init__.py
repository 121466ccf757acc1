"""The one image loader of every domain and the studio (PIL, numpy and torch only; no domain, no gradio).

```python
from studio.images import load_image, check_image, UnreadableImageError
rgb = load_image("photo.png")   # upright 8-bit RGB, fully decoded
check_image("scan.jpg")         # raises UnreadableImageError naming the file when it cannot be loaded
```

One rule per case: EXIF rotation applied, transparency on white, 16-bit scaled by bit depth, palette, CMYK
and grayscale to RGB, and a full decode so that a truncated file fails when it is loaded or checked.
"""

from .convert import to_rgb
from .load import IMAGE_SUFFIXES, ImageSource, UnreadableImageError, check_image, load_image

__all__ = ["IMAGE_SUFFIXES", "ImageSource", "UnreadableImageError", "check_image", "load_image", "to_rgb"]
