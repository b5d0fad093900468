"""Pluggable ASR: the Backend protocol and a registry over the ``lastmile.asr`` entry points."""

from lastmile.asr.base import Backend, BackendSpec, parse_backend_spec
from lastmile.asr.registry import BackendInfo, available_backends, backend_class, build_backend

__all__ = [
    "Backend",
    "BackendInfo",
    "BackendSpec",
    "available_backends",
    "backend_class",
    "build_backend",
    "parse_backend_spec",
]
