"""imageio's module name for the tifffile plugin (``imageio.plugins.tifffile_v3``)."""
from .tifffile import TifffilePlugin

__all__ = ["TifffilePlugin"]
