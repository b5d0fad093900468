"""Running packs: checks before a run, planner, executors, transcript cache and run store
(SQLite)."""

from lastmile.run.engine import ITEM_COLUMNS, Progress, RunOptions, RunResult, run_pack
from lastmile.run.store import RunStore, TranscriptCache, default_cache_path
from lastmile.run.validate import PackReport, validate_pack

__all__ = [
    "ITEM_COLUMNS",
    "PackReport",
    "Progress",
    "RunOptions",
    "RunResult",
    "RunStore",
    "TranscriptCache",
    "default_cache_path",
    "run_pack",
    "validate_pack",
]
