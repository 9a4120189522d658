"""Type aliases at imageio's import path (``from imageio.typing import ArrayLike``)."""
from __future__ import annotations

from io import BytesIO
from pathlib import Path
from typing import BinaryIO, Union

from numpy.typing import ArrayLike

#: what ``imread``/``imwrite``/``imopen`` accept as a resource
ImageResource = Union[str, bytes, BytesIO, Path, BinaryIO]

__all__ = ["ArrayLike", "ImageResource"]
