"""Named text-normalization presets, in one place (jiwer style).

The name of the preset is recorded with every result: WERs under different normalizers are
not comparable.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import cache

__all__ = ["NORMALIZERS", "get_normalizer", "normalize"]

_PUNCT = re.compile(r"[^\w\s']", flags=re.UNICODE)
_STRAY_APOSTROPHE = re.compile(r"(?<![^\W_])'|'(?![^\W_])")
_SPACE = re.compile(r"\s+")


def _basic(text: str) -> str:
    """NFKC, lowercase, punctuation stripped except in-word apostrophes, spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = _PUNCT.sub(" ", text.replace("_", " "))
    text = _STRAY_APOSTROPHE.sub(" ", text)
    return _SPACE.sub(" ", text).strip()


@cache
def _number_normalizer() -> Callable[[str], str]:
    from whisper_normalizer.english import EnglishNumberNormalizer

    return EnglishNumberNormalizer()


@cache
def _whisper_normalizer() -> Callable[[str], str]:
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def _default(text: str) -> str:
    """``basic``, then numbers made comparable ("two tablets" = "2 tablets") by the Whisper
    English number normalizer."""
    return _SPACE.sub(" ", _number_normalizer()(_basic(text))).strip()


def _whisper(text: str) -> str:
    """Whisper's full English normalizer (contractions expanded, British spellings to
    American, fillers removed) after NFKC."""
    text = unicodedata.normalize("NFKC", text)
    return _SPACE.sub(" ", _whisper_normalizer()(text)).strip()


def _none(text: str) -> str:
    """Whitespace collapsed only: case and punctuation count as errors."""
    return _SPACE.sub(" ", text).strip()


NORMALIZERS: dict[str, Callable[[str], str]] = {
    "default": _default,
    "basic": _basic,
    "whisper": _whisper,
    "none": _none,
}


def get_normalizer(name: str) -> Callable[[str], str]:
    """The preset called ``name``; ValueError listing the presets otherwise."""
    try:
        return NORMALIZERS[name]
    except KeyError:
        raise ValueError(
            f"unknown normalizer '{name}'; expected one of {sorted(NORMALIZERS)}"
        ) from None


def normalize(text: str, *, normalizer: str = "default") -> str:
    """Normalize ``text`` with the named preset."""
    return get_normalizer(normalizer)(text)
