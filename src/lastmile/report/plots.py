"""Plots as PNG bytes (matplotlib, Agg canvas, no pyplot state): WER vs SNR per group for
each noise setup drawn at two or more SNRs, WER per group for the other conditions as
categories (a condition at a single SNR, or with no noise), a condition × group heatmap of
Δ, and clean-versus-degraded spectrograms of the listening examples."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import itertools
import json
import math
import re
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, ParamSpec, Protocol, TypeVar

from lastmile.report.findings import FAILED_MARK, condition_info

__all__ = [
    "FigureStore",
    "Plot",
    "condition_points",
    "delta_heatmap",
    "report_plots",
    "snr_curves",
    "spectrogram_pair",
]

# part of the figure cache key: raise it when the drawing code changes
PLOTS_VERSION = "6"
_TITLE_CHARS = 64  # a title wraps at this many characters (a 6.4 in wide figure holds ~70)

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
    curves = snr_curves(summary) + condition_points(summary)
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


def _wrapped(text: str, width: int = _TITLE_CHARS) -> str:
    """``text`` on as many lines as it needs at ``width`` characters (titles never clipped)."""
    return "\n".join(textwrap.wrap(text, width=width, break_on_hyphens=False)) or text


def _zero_visible(ax: Any) -> None:
    """WER axis from a little below 0, ticks from 0: a 0 % point shows whole, not half hidden
    under the axis."""
    top = max(ax.get_ylim()[1], 1.0)
    ax.set_ylim(bottom=-0.04 * top, top=top)
    ticks = [t for t in ax.get_yticks() if 0 <= t <= top]
    ax.set_yticks(ticks)


NO_INTERVAL = "open: no interval"
"""Said in a plot's title when some of its points are drawn open, without an interval."""


def _points(
    ax: Any,
    xs: Sequence[float],
    estimates: Sequence[Mapping[str, Any]],
    *,
    color: Any,
    ms: float,
    line: bool,
) -> tuple[Any, bool]:
    """WER points with their intervals as error bars; a point without an interval is drawn
    open, with no bar (never a zero-height bar passed off as an interval). ``line`` joins
    the points. Returns the artist for the legend and whether any point was drawn open."""
    ys = [float(est["value"]) for est in estimates]
    has_ci = [est.get("ci_low") is not None and est.get("ci_high") is not None for est in estimates]
    parts: list[Any] = []
    if line:
        parts += ax.plot(xs, ys, lw=1.5, color=color, marker="None")
    closed = [k for k, ok in enumerate(has_ci) if ok]
    if closed:
        lows = [max(ys[k] - estimates[k]["ci_low"], 0.0) for k in closed]
        highs = [max(estimates[k]["ci_high"] - ys[k], 0.0) for k in closed]
        parts.append(
            ax.errorbar(
                [xs[k] for k in closed], [ys[k] for k in closed], yerr=[lows, highs],
                marker="o", ms=ms, capsize=3, ls="none", color=color,
            )
        )  # fmt: skip
    opened = [k for k, ok in enumerate(has_ci) if not ok]
    if opened:
        parts += ax.plot(
            [xs[k] for k in opened], [ys[k] for k in opened], ls="none", marker="o", ms=ms,
            markerfacecolor="white", markeredgecolor=color, markeredgewidth=1.3,
        )  # fmt: skip
    # the legend shows the line (if any) with the first kind of marker drawn
    handle = tuple(parts[:2]) if line and len(parts) > 1 else parts[0]
    return handle, bool(opened)


def _all_series(summary: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
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


def _series(summary: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The noise setups drawn at two SNRs or more: those make a curve."""
    return {k: v for k, v in _all_series(summary).items() if len({p["snr_db"] for p in v}) > 1}


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
        any_open = False
        for k, group in enumerate(groups):
            # groups side by side around each SNR, all within a fifth of the SNR step
            offset = (k - (len(groups) - 1) / 2) * min(0.06, 0.2 / max(len(groups) - 1, 1)) * step
            xs, estimates = [], []
            for p in points:
                cell = next((c for c in p["cond"]["groups"] if c["group"] == group), None)
                wer = None if cell is None else cell["wer_pct"]
                if wer is None or wer["value"] is None:
                    continue
                xs.append(p["snr_db"] + offset)
                estimates.append(wer)
            if not xs:
                continue
            handle, opened = _points(ax, xs, estimates, color=colors[group], ms=4, line=True)
            any_open = any_open or opened
            handles.append(handle)
            names.append(_literal(group))
            base = clean_wer.get(group)
            if base is not None and math.isfinite(base):
                ax.axhline(base, color=colors[group], ls="--", lw=0.9, alpha=0.7)
        ax.set_xlabel("SNR (dB)")
        ax.set_xticks(snrs, labels=[f"{x:g}" for x in snrs])  # the SNRs run, not the offsets
        ax.set_ylabel("WER (%)")
        key = f"bars: {level} CI; {NO_INTERVAL}" if any_open else f"bars: {level} CI"
        ax.set_title(
            _literal(_wrapped(f"{title}: WER vs SNR ({key}; dashed: clean)")),
            fontsize=10,
        )
        _zero_visible(ax)
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
    for cond in conditions:  # ids as the pack wrote them; the report's tables give labels
        mark = f"  [{cond['flag']}]" if cond["flag"] else ""  # every verdict, clean has none
        labels.append(_literal(str(cond["id"]) + mark))
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
    ax.set_title(_wrapped(title, 56), fontsize=10)
    return Plot(
        title="Degradation by condition and group",
        alt=f"Heatmap of the degradation from clean ({unit}) for every condition and group",
        png=_png(fig),
    )


def _categorical(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The conditions no curve shows: the clean reference, conditions run at a single SNR
    for their noise setup, and conditions with no SNR (a device or a channel alone)."""
    in_curves = {p["cond"]["id"] for points in _series(summary).values() for p in points}
    return [c for c in summary["analysis"]["conditions"] if c["id"] not in in_curves]


@_drawn_plainly
def condition_points(summary: Mapping[str, Any]) -> list[Plot]:
    """WER % per group (with CI bars) for the conditions no SNR curve shows, one category per
    condition (named by its id), the clean reference first. Empty when every degraded
    condition is on a curve."""
    analysis = summary["analysis"]
    conditions = _categorical(summary)
    if not any(not c["is_clean"] for c in conditions):
        return []
    groups = list(analysis["groups"])
    colors = _colors(groups)
    level = f"{analysis['settings']['ci_level'] * 100:g}%"
    ids = [str(c["id"]) for c in conditions]
    fig = _figure(min(4.0 + 0.9 * len(conditions), 12.0), 3.9)
    ax = fig.add_subplot()
    handles: list[Any] = []
    names: list[str] = []
    any_open = False
    spread = min(0.6, 0.15 * len(groups))
    for k, group in enumerate(groups):
        offset = (k - (len(groups) - 1) / 2) * (spread / max(len(groups) - 1, 1))
        xs, estimates = [], []
        for i, cond in enumerate(conditions):
            cell = next((c for c in cond["groups"] if c["group"] == group), None)
            wer = None if cell is None else cell["wer_pct"]
            if wer is None or wer["value"] is None:
                continue
            xs.append(i + offset)
            estimates.append(wer)
        if not xs:
            continue
        handle, opened = _points(ax, xs, estimates, color=colors[group], ms=5, line=False)
        any_open = any_open or opened
        handles.append(handle)
        names.append(_literal(group))
    rotate = sum(len(i) for i in ids) > 60
    ax.set_xticks(
        range(len(ids)),
        labels=[_literal(i) for i in ids],
        rotation=30 if rotate else 0,
        ha="right" if rotate else "center",
        fontsize=8,
    )
    ax.set_xlim(-0.6, len(ids) - 0.4)
    ax.set_ylabel("WER (%)")
    key = f"bars: {level} CI; {NO_INTERVAL}" if any_open else f"bars: {level} CI"
    ax.set_title(_wrapped(f"WER by condition ({key})"), fontsize=10)
    _zero_visible(ax)
    ax.grid(alpha=0.3, axis="y")
    if handles:
        group_by = summary.get("run", {}).get("group_by") or "group"
        ax.legend(handles, names, title=_literal(group_by), fontsize=8)
    return [
        Plot(
            title="WER by condition",
            alt=f"WER per group for the conditions {', '.join(ids)}, with {level} intervals",
            png=_png(fig),
        )
    ]


@_drawn_plainly
def spectrogram_pair(
    clean: Any,
    degraded: Any,
    *,
    clean_sample_rate: int,
    degraded_sample_rate: int,
    titles: Sequence[str] = ("clean", "degraded"),
) -> Plot:
    """Clean and degraded spectrograms side by side (scipy's short-time Fourier transform,
    64 ms windows), on one colour scale (dB, 80 dB range) and a log frequency axis from 40 Hz,
    so a hum's harmonics and a handset's band edges show. ``clean`` and ``degraded`` are 1-D
    float arrays."""
    import numpy as np
    from scipy.signal import spectrogram

    panels = []
    for audio, rate in ((clean, clean_sample_rate), (degraded, degraded_sample_rate)):
        samples = np.asarray(audio, dtype=np.float64)
        nperseg = min(int(0.064 * rate), len(samples))
        freqs, times, power = spectrogram(
            samples, fs=rate, window="hann", nperseg=nperseg, noverlap=nperseg * 3 // 4
        )
        panels.append((freqs, times, 10 * np.log10(power + 1e-12)))
    top = max(float(np.max(db)) for _, _, db in panels)
    fig = _figure(8.4, 2.7)
    axes = fig.subplots(1, 2, sharey=True)
    image = None
    for ax, (freqs, times, db), title in zip(axes, panels, titles, strict=True):
        keep = freqs >= 40.0
        image = ax.pcolormesh(
            times, freqs[keep], db[keep], shading="auto", cmap="magma", vmin=top - 80, vmax=top
        )
        ax.set_yscale("log")
        nyquist = float(freqs[-1])
        ticks = [f for f in (50, 100, 200, 500, 1000, 2000, 4000, 8000, 16000) if f <= nyquist]
        ax.set_yticks(ticks, labels=[f"{f / 1000:g}k" if f >= 1000 else str(f) for f in ticks])
        ax.minorticks_off()
        ax.set_xlabel("time (s)", fontsize=8)
        ax.set_title(_literal(_wrapped(str(title), 48)), fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("frequency (Hz)", fontsize=8)
    fig.colorbar(image, ax=list(axes), label="dB", shrink=0.9)
    return Plot(
        title=f"Spectrograms: {titles[0]} and {titles[1]}",
        alt=f"Spectrograms of the {titles[0]} and {titles[1]} renderings side by side",
        png=_png(fig),
    )
