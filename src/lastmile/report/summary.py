"""summary.json: run metadata, the analysis and plain-language findings, versioned."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from lastmile import __version__
from lastmile.analysis import FairnessSettings, analyze_table, count_table
from lastmile.analysis.mitigation import mitigation_section
from lastmile.errors import ConfigError
from lastmile.report.findings import findings
from lastmile.report.run_folder import RunFolder, iter_items_csv, read_run_json

__all__ = [
    "SUMMARY_SCHEMA_VERSION",
    "build_summary",
    "latency_summary",
    "summarize",
    "summary_schema",
]

SUMMARY_SCHEMA_VERSION = 1
"""Version of summary.json's layout (``lastmile/schemas/summary.schema.json``)."""


def summary_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of summary.json, as shipped with the package."""
    text = (resources.files("lastmile") / "schemas" / "summary.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def summarize(folder: RunFolder) -> dict[str, Any]:
    """summary.json's content for an already loaded :class:`RunFolder`."""
    return _summarize(folder.path, folder.meta, iter(folder.items))


def latency_summary(decode_s: list[float]) -> dict[str, Any]:
    """Seconds per decoded item (a remote backend's request latency, retries included; a
    local backend's decoding time): count, median, 95th percentile, largest, mean."""
    values = np.sort(np.asarray(decode_s, dtype=float))
    return {
        "n_items": int(values.size),
        "p50_s": round(float(np.percentile(values, 50)), 4),
        "p95_s": round(float(np.percentile(values, 95)), 4),
        "max_s": round(float(values[-1]), 4),
        "mean_s": round(float(values.mean()), 4),
    }


def _tap_latency(items: Iterator[dict[str, Any]], out: list[float]) -> Iterator[dict[str, Any]]:
    """``items`` unchanged, with the decode seconds of each item decoded in this run (not
    failed, not from the cache) appended to ``out``."""
    for item in items:
        if not item.get("error") and str(item.get("cached", "")).lower() != "true":
            try:
                value = float(item.get("decode_s") or "nan")
            except ValueError:
                value = float("nan")
            if math.isfinite(value) and value >= 0:
                out.append(value)
        yield item


def _summarize(path: Path, meta: dict[str, Any], items: Iterator[dict[str, Any]]) -> dict[str, Any]:
    run_json = path / "run.json"
    try:
        settings = FairnessSettings.model_validate(meta.get("fairness") or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"fairness.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{run_json}: {problems}; fix the pack's fairness: block") from None
    seed = (meta.get("pack") or {}).get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"{run_json}: pack.seed: expected a whole number >= 0, got {seed!r}")
    first = next(items, None)
    if first is None:
        raise ConfigError(
            f"{path / 'items.csv'}: no items; the run finished nothing. Rerun the pack "
            f"or resume it (lastmile run PACK --resume {path})"
        )
    decode_s: list[float] = []
    try:
        table = count_table(
            _tap_latency(itertools.chain([first], items), decode_s),
            clean_condition_id=str(meta["clean_condition_id"]),
        )
        analysis = analyze_table(table, settings=settings, seed=seed)
        mitigation = mitigation_section(
            table, meta.get("conditions") or [], settings=settings, seed=seed
        )
    except ConfigError as exc:
        where = str(path / "items.csv")
        raise ConfigError(str(exc) if str(exc).startswith(where) else f"{where}: {exc}") from exc
    summary: dict[str, Any] = {
        "schema_version": SUMMARY_SCHEMA_VERSION,
        "generated_by": {"lastmile": __version__},
        "run": meta,
        "analysis": analysis.to_dict(),
        "findings": [],
    }
    if mitigation is not None:  # the pack had front ends
        summary["mitigation"] = mitigation
    if decode_s:
        summary["latency"] = latency_summary(decode_s)
    summary["findings"] = findings(summary)
    return summary


def build_summary(run_dir: str | Path) -> dict[str, Any]:
    """Read ``run_dir`` (run.json + items.csv), analyse it and return summary.json's content:
    ``{"schema_version", "generated_by", "run", "analysis", "findings"}``.

    Deterministic: the analysis seed is the pack's seed, so rebuilding gives the same file.
    Raises :class:`~lastmile.errors.ConfigError` for an incomplete or newer run folder.
    """
    path = Path(run_dir)
    return _summarize(path, read_run_json(path), iter_items_csv(path / "items.csv"))
