"""Format plugins.  Each module is imported only when its plugin is tried
(see :mod:`imgio.core.registry`), so importing this package loads no backend."""
