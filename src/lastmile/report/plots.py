"""Plots as PNG bytes (matplotlib, Agg canvas, no pyplot state): WER vs SNR per group for
each noise setup, and a condition × group heatmap of Δ."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import itertools
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, ParamSpec, Protocol, TypeVar

from lastmile.report.findings import FAILED_MARK, condition_info

__all__ = ["FigureStore", "Plot", "delta_heatmap", "report_plots", "snr_curves"]

# part of the figure cache key: raise it when the drawing code changes
PLOTS_VERSION = "2"

_SNR_TEXT = re.compile(r"\s*at\s+-?\d+(?:\.\d+)?\s*dB SNR", re.IGNORECASE)
_DPI = 110


@dataclass(frozen=True)
class Plot:
    """A rendered figure: a title, alternative text and PNG bytes."""

    title: str
    alt: str
    png: bytes


class FigureStore(Protocol):
    """Where drawn figures are kept between runs (``TranscriptCache`` is one)."""

    def get_figures(self, key: str) -> bytes | None: ...

    def put_figures(self, key: str, data: bytes) -> None: ...


def _plots_key(summary: Mapping[str, Any]) -> str:
    """A digest of everything the plots are drawn from, and of the code that draws them."""
    run = summary.get("run", {})
    inputs = {
        "analysis": summary["analysis"],
        "conditions": condition_info(run),
        "group_by": run.get("group_by"),
        "plots": PLOTS_VERSION,
        "matplotlib": version("matplotlib"),
    }
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _plot_row(plot: Plot) -> dict[str, str]:
    return {"title": plot.title, "alt": plot.alt, "png": base64.b64encode(plot.png).decode()}


def _row_plot(row: Mapping[str, str]) -> Plot:
    return Plot(row["title"], row["alt"], base64.b64decode(row["png"]))


def report_plots(
    summary: Mapping[str, Any], *, store: FigureStore | None = None
) -> tuple[list[Plot], Plot | None]:
    """:func:`snr_curves` and :func:`delta_heatmap` of ``summary``, taken from ``store`` when
    it holds figures drawn from the same data by the same code, else drawn (and kept there)."""
    key = _plots_key(summary) if store is not None else ""
    if store is not None and (data := store.get_figures(key)) is not None:
        kept = json.loads(data)
        heat = None if kept["heatmap"] is None else _row_plot(kept["heatmap"])
        return [_row_plot(row) for row in kept["curves"]], heat
    curves = snr_curves(summary)
    heat = delta_heatmap(summary)
    if store is not None:
        kept = {
            "curves": [_plot_row(p) for p in curves],
            "heatmap": None if heat is None else _plot_row(heat),
        }
        store.put_figures(key, json.dumps(kept).encode())
    return curves, heat


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _literal(text: object) -> str:
    """Text matplotlib draws as written: each ``$`` escaped, so ``$x$`` in a group name or a
    condition label is not read as mathtext (which draws it differently or fails)."""
    return str(text).replace("$", r"\$")


@contextmanager
def _plain_text() -> Iterator[None]:
    """Draw with matplotlib's own text engine whatever the user's matplotlibrc says
    (``text.usetex: true`` would hand names to LaTeX)."""
    from matplotlib import rc_context

    with rc_context({"text.usetex": False}):
        yield


def _drawn_plainly(func: Callable[_P, _R]) -> Callable[_P, _R]:
    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with _plain_text():
            return func(*args, **kwargs)

    return wrapper


def _figure(width_in: float, height_in: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return buf.getvalue()


def _colors(groups: list[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if len(groups) <= 10 else colormaps["tab20"]
    return {g: cmap(k % cmap.N) for k, g in enumerate(groups)}


def _series(summary: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Conditions with an SNR grouped by everything but the SNR (one curve set each)."""
    info = condition_info(summary.get("run", {}))
    out: dict[str, list[dict[str, Any]]] = {}
    for cond in summary["analysis"]["conditions"]:
        meta = info.get(cond["id"], {})
        snr = meta.get("snr_db")
        if cond["is_clean"] or not isinstance(snr, (int, float)):
            continue
        spec = meta.get("spec")
        if isinstance(spec, Mapping):
            key = json.dumps({k: v for k, v in spec.items() if k != "snr_db"}, sort_keys=True)
        else:
            key = str(meta.get("noise_family", cond["id"]))
        out.setdefault(key, []).append({"cond": cond, "snr_db": float(snr), "meta": meta})
    return out


@_drawn_plainly
def snr_curves(summary: Mapping[str, Any]) -> list[Plot]:
    """One plot per noise setup: pooled WER % (with CI error bars) against SNR, a line per
    group, the group's clean WER as a dashed line. Empty list when no condition has an SNR."""
    analysis = summary["analysis"]
    groups = list(analysis["groups"])
    colors = _colors(groups)
    clean = next(c for c in analysis["conditions"] if c["is_clean"])
    clean_wer = {cell["group"]: cell["wer_pct"]["value"] for cell in clean["groups"]}
    level = f"{analysis['settings']['ci_level'] * 100:g}%"
    plots = []
    for points in _series(summary).values():
        points.sort(key=lambda p: p["snr_db"])
        snrs = sorted({p["snr_db"] for p in points})
        step = min((b - a for a, b in itertools.pairwise(snrs)), default=10.0)
        family = str(points[0]["meta"].get("noise_family", ""))
        title = _SNR_TEXT.sub("", str(points[0]["meta"].get("label", family))).strip(" ,")
        title = title or family or "noise"
        fig = _figure(6.4, 3.9)
        ax = fig.add_subplot()
        handles: list[Any] = []
        names: list[str] = []
        for k, group in enumerate(groups):
            offset = (k - (len(groups) - 1) / 2) * 0.06 * step
            xs, ys, lows, highs = [], [], [], []
            for p in points:
                cell = next((c for c in p["cond"]["groups"] if c["group"] == group), None)
                wer = None if cell is None else cell["wer_pct"]
                if wer is None or wer["value"] is None:
                    continue
                xs.append(p["snr_db"] + offset)
                ys.append(wer["value"])
                lo = wer["ci_low"] if wer["ci_low"] is not None else wer["value"]
                hi = wer["ci_high"] if wer["ci_high"] is not None else wer["value"]
                lows.append(max(wer["value"] - lo, 0.0))
                highs.append(max(hi - wer["value"], 0.0))
            if not xs:
                continue
            handles.append(
                ax.errorbar(
                    xs,
                    ys,
                    yerr=[lows, highs],
                    marker="o",
                    ms=4,
                    capsize=3,
                    lw=1.5,
                    color=colors[group],
                )
            )
            names.append(_literal(group))
            base = clean_wer.get(group)
            if base is not None and math.isfinite(base):
                ax.axhline(base, color=colors[group], ls="--", lw=0.9, alpha=0.7)
        ax.set_xlabel("SNR (dB)")
        ax.set_ylabel("WER (%)")
        ax.set_title(
            _literal(f"{title}: WER vs SNR (bars: {level} CI; dashed: clean)"), fontsize=10
        )
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        if handles:  # every item of the family may have failed
            group_by = summary.get("run", {}).get("group_by") or "group"
            # handles and labels given explicitly: a label starting with "_" is kept
            ax.legend(handles, names, title=_literal(group_by), fontsize=8)
        plots.append(
            Plot(
                title=title,
                alt=f"WER versus SNR for {title}, one line per group, with {level} intervals",
                png=_png(fig),
            )
        )
    return plots


@_drawn_plainly
def delta_heatmap(summary: Mapping[str, Any]) -> Plot | None:
    """Condition × group heatmap of Δ (points), flagged rows marked, cells with failed items
    marked ``†``; ``None`` if there is no degraded condition."""
    import numpy as np

    analysis = summary["analysis"]
    info = condition_info(summary.get("run", {}))
    conditions = [c for c in analysis["conditions"] if not c["is_clean"]]
    if not conditions:
        return None
    groups = list(analysis["groups"])
    values = np.full((len(conditions), len(groups)), np.nan)
    failed = np.zeros((len(conditions), len(groups)), dtype=bool)
    for i, cond in enumerate(conditions):
        for cell in cond["groups"]:
            value = cell["delta_pts"]["value"]
            failed[i, groups.index(cell["group"])] = bool(cell.get("n_failed"))
            if value is not None:
                values[i, groups.index(cell["group"])] = value
    labels = []
    for cond in conditions:
        label = str(info.get(cond["id"], {}).get("label", cond["id"]))
        label = label if len(label) <= 48 else label[:47] + "…"
        mark = {"uneven": "  [uneven]", "inconclusive": "  [inconclusive]"}.get(cond["flag"], "")
        labels.append(_literal(label + mark))
    finite = values[np.isfinite(values)]
    limit = float(np.max(np.abs(finite))) if finite.size else 1.0
    limit = limit or 1.0
    width = min(3.5 + 1.0 * len(groups) + 0.07 * max(len(s) for s in labels), 16.0)
    fig = _figure(width, min(1.6 + 0.38 * len(conditions), 30.0))
    ax = fig.add_subplot()
    from matplotlib import colormaps

    cmap = colormaps["RdBu_r"].with_extremes(bad="#dddddd")
    image = ax.imshow(
        np.ma.masked_invalid(values), cmap=cmap, vmin=-limit, vmax=limit, aspect="auto"
    )
    ax.set_xticks(
        range(len(groups)),
        labels=[_literal(g) for g in groups],
        rotation=30 if len(groups) > 5 else 0,
    )
    ax.set_yticks(range(len(conditions)), labels=labels, fontsize=8)
    for i in range(len(conditions)):
        for j in range(len(groups)):
            value = values[i, j]
            text = "n/a" if not np.isfinite(value) else f"{value:+.1f}"
            text += FAILED_MARK if failed[i, j] else ""
            dark = np.isfinite(value) and abs(value) > 0.6 * limit
            ax.text(
                j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black"
            )
    unit = "WER points" if analysis["metric"] == "absolute" else "% relative change"
    fig.colorbar(image, ax=ax, label=f"Δ from clean ({unit})", shrink=0.9)
    title = "Degradation Δ by condition and group"
    if failed.any():
        title += f" ({FAILED_MARK}: some items failed, left out)"
    ax.set_title(title, fontsize=10)
    return Plot(
        title="Degradation by condition and group",
        alt=f"Heatmap of the degradation from clean ({unit}) for every condition and group",
        png=_png(fig),
    )
