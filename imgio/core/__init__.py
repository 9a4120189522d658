"""Core plumbing: resources (:mod:`.request`), plugin contract (:mod:`.plugin`),
plugin registry (:mod:`.registry`) and plugin choice (:mod:`.imopen`)."""
from .plugin import ImageProperties, PluginV3
from .request import Request

__all__ = ["ImageProperties", "PluginV3", "Request"]
