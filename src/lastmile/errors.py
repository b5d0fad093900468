"""The exception hierarchy. Every message says where, what was found, what is allowed, the fix."""

from __future__ import annotations

__all__ = [
    "AudioError",
    "BackendError",
    "ConfigError",
    "FatalBackendError",
    "LastmileError",
    "RunFailed",
]


class LastmileError(Exception):
    """Base of every error lastmile raises on purpose."""


class ConfigError(LastmileError):
    """Bad user input: a pack, a manifest, a profile, a command-line value."""


class AudioError(LastmileError):
    """Audio that cannot be used: unreadable, empty, non-finite, wrong shape."""


class BackendError(LastmileError):
    """An ASR backend that cannot be built or fails while decoding."""


class FatalBackendError(BackendError):
    """A backend failure that would fail every item the same way (a refused API key, an
    unknown model, a server that cannot be reached): the run stops at once instead of
    recording it on each item."""


class RunFailed(LastmileError):
    """A run whose share of failed items is above the pack's ``run.max_failed_share``: its
    items are written (items.csv, run.json), but the run is no result (CLI exit code 3)."""
