"""Rendering: an utterance under a condition, in physical order (:mod:`lastmile.render.engine`),
and one item rendered to listen to (:func:`render_item`, :func:`write_item`)."""

from lastmile.render.engine import RENDERER_VERSION, RenderedItem, Renderer
from lastmile.render.item import RenderedExample, render_item, write_item

__all__ = [
    "RENDERER_VERSION",
    "RenderedExample",
    "RenderedItem",
    "Renderer",
    "render_item",
    "write_item",
]
