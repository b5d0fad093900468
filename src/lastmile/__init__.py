"""lastmile: how a speech recognizer holds up in the acoustic last mile, group by group."""

from lastmile.errors import AudioError, BackendError, ConfigError, LastmileError

__version__ = "0.1.0"

__all__ = ["AudioError", "BackendError", "ConfigError", "LastmileError", "__version__"]
