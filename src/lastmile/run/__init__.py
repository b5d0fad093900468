"""Running packs: planner, local executor, transcript cache and run store (SQLite)."""

from lastmile.run.engine import ITEM_COLUMNS, Progress, RunOptions, RunResult, run_pack
from lastmile.run.store import RunStore, TranscriptCache, default_cache_path

__all__ = [
    "ITEM_COLUMNS",
    "Progress",
    "RunOptions",
    "RunResult",
    "RunStore",
    "TranscriptCache",
    "default_cache_path",
    "run_pack",
]
