"""imageio's module name for the tifffile plugin (``imageio.plugins.tifffile_v3``)."""
from .tiff.plugin import TifffilePlugin

__all__ = ["TifffilePlugin"]
