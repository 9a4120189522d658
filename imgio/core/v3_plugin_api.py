"""The v3 plugin contract at imageio's import path.

``from imageio.core.v3_plugin_api import PluginV3, ImageProperties`` works with
imgio's own classes: plugins subclass :class:`PluginV3` and describe images
with :class:`ImageProperties` (imgio adds ``axes`` and ``units``).
"""
from .plugin import ImageProperties, PluginV3

__all__ = ["PluginV3", "ImageProperties"]
