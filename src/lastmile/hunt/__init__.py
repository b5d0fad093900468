"""`lastmile hunt`: search a space of conditions for the ones that hurt one accent group most,
on discovery speakers, and confirm the best on speakers the search never saw.

:func:`lastmile.hunt.search.run_hunt` is the search and confirmation logic over an
"evaluate these candidates on these utterances" callable; :func:`hunt_pack` wires it to the
run engine. Names are imported lazily (the pack schema imports :mod:`.settings`).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Candidate",
    "HuntOutcome",
    "HuntResult",
    "HuntSettings",
    "Space",
    "UttRef",
    "build_space",
    "hunt_pack",
    "run_hunt",
    "split_speakers",
]

_WHERE = {
    "Candidate": "space",
    "Space": "space",
    "build_space": "space",
    "HuntSettings": "settings",
    "HuntResult": "search",
    "UttRef": "search",
    "run_hunt": "search",
    "split_speakers": "search",
    "HuntOutcome": "engine",
    "hunt_pack": "engine",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"lastmile.hunt.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'lastmile.hunt' has no attribute {name!r}")
