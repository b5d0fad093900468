"""pytest plugin: scenario packs as regression tests against stored baselines.

``pytest --lastmile scenarios/`` (or ini ``lastmile_packs = scenarios/*.yaml``) collects each
pack as test items: one per condition and one for the pack's fairness verdict. Baselines live
beside the pack (``PACK.baseline.json``): a missing one is written and the test fails; a
mismatch writes ``PACK.obtained.json``; ``--lastmile-update-baseline`` accepts the change.

A baseline rests on every item being scored: results with a cell whose items failed, or with
no scored item (a null WER), are never written, accepted or compared against; neither is a
baseline file holding such cells. The pack's tests fail naming those cells.

A baseline knows what it measured: each condition's spec, the backend's fingerprint, the
normalizer and the seed. When they differ from this run's, the baseline is stale and the
tests say what changed (``baseline stale: condition hum changed (snr_db 15 → 0)``) instead
of comparing WERs measured under different conditions.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "BASELINE_SCHEMA_VERSION",
    "LastmileState",
    "compare_to_baseline",
    "make_baseline",
    "stale_baseline",
    "unusable_cells",
]

BASELINE_SCHEMA_VERSION = 2
_ACCEPT = "accept with --lastmile-update-baseline"
_OPTIONS = {
    # option name: (ini name, help, type)
    "asr": ("lastmile_asr", "ASR backend spec for pack tests (default: each pack's own).", str),
    "workers": ("lastmile_workers", "Worker processes for pack runs (default 1).", int),
    "out": (
        "lastmile_out",
        "Folder for pack run folders (default: one per session in the temporary folder; "
        "the 3 newest ended ones are kept).",
        str,
    ),
    "limit": ("lastmile_limit", "At most N utterances per pack (round-robin over groups).", int),
    "executor": (
        "lastmile_executor",
        "Where pack runs decode: local or ray (default: each pack's run.executor).",
        str,
    ),
    "ray-address": (
        "lastmile_ray_address",
        "With the ray executor: the cluster (HOST:PORT); default: a local Ray per run.",
        str,
    ),
}


@dataclass
class PackOutcome:
    """The run of one pack in this session and its comparison with the baseline."""

    pack: Path
    summary: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    baseline_status: str = ""  # "written", "matched", "regressed", "stale", "updated"
    problems: dict[str, list[str]] = field(default_factory=dict)  # condition or "fairness"
    error: str | None = None


@dataclass
class LastmileState:
    """Plugin state for one session (kept in ``config.stash``)."""

    outcomes: dict[Path, PackOutcome] = field(default_factory=dict)
    root: Path | None = None  # this session's folder of run folders (without --lastmile-out)


STATE_KEY = pytest.StashKey[LastmileState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lastmile", "lastmile scenario packs")
    group.addoption(
        "--lastmile", action="store_true", help="Collect scenario pack YAML files as tests."
    )
    group.addoption(
        "--lastmile-update-baseline",
        action="store_true",
        help="Accept the current results as the new baselines.",
    )
    for name, (ini, text, _kind) in _OPTIONS.items():
        group.addoption(f"--lastmile-{name}", dest=f"lastmile_{name}", default=None, help=text)
        parser.addini(ini, text, default=None)
    parser.addini(
        "lastmile_packs", "Globs of scenario packs to collect as tests.", type="args", default=[]
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lastmile: a scenario-pack test collected by lastmile")
    config.stash[STATE_KEY] = LastmileState()


def _setting(config: pytest.Config, name: str) -> Any:
    ini, _text, kind = _OPTIONS[name]
    value = config.getoption(f"lastmile_{name}")
    if value is None:
        value = config.getini(ini)
    if value in (None, ""):
        return None
    try:
        return kind(value)
    except ValueError:
        raise pytest.UsageError(
            f"--lastmile-{name} / {ini}: expected {kind.__name__}, got {value!r}"
        ) from None


def _is_pack(config: pytest.Config, file_path: Path) -> bool:
    if file_path.suffix not in (".yaml", ".yml") or file_path.name.endswith(".baseline.json"):
        return False
    rel = (
        file_path.relative_to(config.rootpath).as_posix()
        if file_path.is_relative_to(config.rootpath)
        else file_path.as_posix()
    )
    globs = config.getini("lastmile_packs")
    if any(fnmatch.fnmatch(rel, g) for g in globs):
        return True
    if not config.getoption("lastmile"):
        return False
    import yaml

    try:
        data = yaml.safe_load(file_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "corpus" in data and "name" in data


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if _is_pack(parent.config, file_path):
        return PackFile.from_parent(parent, path=file_path)
    return None


class PackFile(pytest.File):
    """A scenario pack: one item per condition and one for the fairness verdict."""

    def collect(self) -> Iterator[pytest.Item]:
        from lastmile.errors import ConfigError
        from lastmile.scenario.pack import load_pack

        try:
            loaded = load_pack(self.path)
        except ConfigError as exc:
            raise self.CollectError(str(exc)) from exc
        for cond in loaded.conditions:
            item = ConditionItem.from_parent(
                self, name=f"condition[{cond.id}]", condition_id=cond.id
            )
            item.add_marker("lastmile")
            yield item
        fair = FairnessItem.from_parent(self, name="fairness")
        fair.add_marker("lastmile")
        yield fair
        for name in loaded.pack.mitigation.expect:  # the pack's front ends must keep working
            mit = MitigationItem.from_parent(self, name=f"mitigation[{name}]", frontend=name)
            mit.add_marker("lastmile")
            yield mit


class LastmileFailure(Exception):
    """A pack test's failure, shown without a traceback."""


class _PackItem(pytest.Item):
    def outcome(self) -> PackOutcome:
        state = self.config.stash[STATE_KEY]
        pack = self.path
        if pack not in state.outcomes:
            state.outcomes[pack] = _run_and_compare(self.config, pack)
        return state.outcomes[pack]

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, LastmileFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.path.name}::{self.name}"


class ConditionItem(_PackItem):
    def __init__(self, *, condition_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.condition_id = condition_id

    def runtest(self) -> None:
        out = self.outcome()
        if out.error:
            raise LastmileFailure(out.error)
        if out.baseline_status == "written":
            raise LastmileFailure(
                f"no baseline for {self.path.name}: wrote {_baseline_path(self.path).name}; "
                "check it in and run again"
            )
        problems = out.problems.get(self.condition_id, [])
        if problems:
            accept = "" if all(_ACCEPT in line for line in problems) else f"; {_ACCEPT}"
            raise LastmileFailure(
                "\n".join(problems)
                + f"\n(obtained results: {_obtained_path(self.path).name}{accept})"
            )


class FairnessItem(_PackItem):
    def runtest(self) -> None:
        out = self.outcome()
        if out.error:
            raise LastmileFailure(out.error)
        if out.baseline_status == "written":
            raise LastmileFailure(
                f"no baseline for {self.path.name}: wrote {_baseline_path(self.path).name}"
            )
        problems = out.problems.get("fairness", [])
        if problems:
            raise LastmileFailure("\n".join(problems))


class MitigationItem(_PackItem):
    """A front end still does what the pack's ``mitigation.expect`` says (no baseline)."""

    def __init__(self, *, frontend: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.frontend = frontend

    def runtest(self) -> None:
        from lastmile.analysis.mitigation import mitigation_problems
        from lastmile.scenario.pack import load_pack

        out = self.outcome()
        if out.error:
            raise LastmileFailure(out.error)
        pack = load_pack(self.path).pack
        problems = mitigation_problems(
            out.summary.get("mitigation"),
            self.frontend,
            pack.mitigation.expect[self.frontend],
            threshold_pts=pack.fairness.threshold * 100.0,
        )
        if problems:
            raise LastmileFailure("\n".join(problems))


def _baseline_path(pack: Path) -> Path:
    return pack.with_name(pack.stem + ".baseline.json")


def _obtained_path(pack: Path) -> Path:
    return pack.with_name(pack.stem + ".obtained.json")


def make_baseline(summary: dict[str, Any]) -> dict[str, Any]:
    """The part of a summary a baseline keeps: WER per condition × group with CI, verdicts
    with their gap and q, and what was measured (each condition's spec, the backend's
    fingerprint, the normalizer, the seed)."""
    analysis = summary.get("analysis", {})
    cells: dict[str, dict[str, Any]] = {}
    flags: dict[str, Any] = {}
    gaps: dict[str, dict[str, Any]] = {}
    for cond in analysis.get("conditions", []):
        flags[cond["id"]] = cond.get("flag")
        if not cond.get("is_clean"):
            gap = cond.get("disparity_pts") or {}
            deltas = {
                cell["group"]: (cell.get("delta_pts") or {}).get("value")
                for cell in cond.get("groups", [])
            }
            gaps[cond["id"]] = {
                "gap": gap.get("value"),
                "ci_low": gap.get("ci_low"),
                "ci_high": gap.get("ci_high"),
                "q": cond.get("q_value"),
                "worst_group": cond.get("worst_group"),
                "worst_delta": deltas.get(cond.get("worst_group")),
                "best_group": cond.get("best_group"),
                "best_delta": deltas.get(cond.get("best_group")),
            }
        for cell in cond.get("groups", []):
            wer = cell.get("wer_pct") or {}
            cells.setdefault(cond["id"], {})[cell["group"]] = {
                "wer": wer.get("value"),
                "ci_low": wer.get("ci_low"),
                "ci_high": wer.get("ci_high"),
                "n_items": cell.get("n_items"),
                "n_failed": cell.get("n_failed"),
            }
    run = summary.get("run", {})
    parts = (run.get("identity") or {}).get("parts") or {}
    return {
        "schema_version": BASELINE_SCHEMA_VERSION,
        "pack": run.get("pack", {}).get("name"),
        "seed": run.get("pack", {}).get("seed"),
        "utterances": parts.get("utterances"),  # digests of the run's identity parts
        "renderer": parts.get("renderer"),
        "backend": run.get("backend", {}).get("fingerprint"),
        "normalizer": run.get("normalizer"),
        "conditions": {str(c["id"]): c.get("spec") for c in run.get("conditions", []) if "id" in c},
        "metric": analysis.get("metric"),
        "units": "WER in percent",
        "cells": cells,
        "flags": flags,
        "gaps": gaps,
    }


def _show(value: Any) -> str:
    """A spec value as a pack writes it: ``15``, ``none``, ``{type: hum, fundamental_hz: 60}``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        inner = ", ".join(f"{k}: {_show(v)}" for k, v in value.items() if v is not None)
        return "{" + inner + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _spec_changes(before: Any, now: Any, path: str = "") -> list[str]:
    """``["snr_db 15 → 0", "noise.fundamental_hz 60 → 50"]``: what differs, leaf by leaf."""
    if isinstance(before, dict) and isinstance(now, dict):
        out: list[str] = []
        for key in [*now, *(k for k in before if k not in now)]:
            out += _spec_changes(before.get(key), now.get(key), f"{path}.{key}" if path else key)
        return out
    if before == now:
        return []
    return [f"{path or 'spec'} {_show(before)} → {_show(now)}"]


def _describe_change(before: Any, now: Any) -> str:
    """``a → b``; for fingerprints written as JSON objects, only the fields that differ."""

    def parsed(value: Any) -> Any:
        try:
            return json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            return value

    old, new = parsed(before), parsed(now)
    if isinstance(old, dict) and isinstance(new, dict):
        return ", ".join(_spec_changes(old, new)[:4])

    def short(value: Any) -> str:
        text = _show(value)
        return text if len(text) <= 80 else text[:77] + "..."

    return f"{short(before)} → {short(now)}"


def stale_baseline(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[str]]:
    """Why ``before`` no longer measures what ``after`` does, per condition (and
    ``fairness``): another backend, normalizer, seed, utterance selection or renderer makes
    every condition stale; a
    condition whose spec changed under the same id is stale alone. Empty when it is current."""
    whole = []
    for key, what in (("backend", "the backend"), ("normalizer", "the normalizer"),
                      ("seed", "the seed")):  # fmt: skip
        if before.get(key) != after.get(key):
            whole.append(f"{what} changed ({_describe_change(before.get(key), after.get(key))})")
    for key, what in (
        ("utterances", "the utterances changed (another corpus, transcripts or --lastmile-limit)"),
        ("renderer", "the renderer changed (lastmile was upgraded)"),
    ):
        if before.get(key) != after.get(key):
            whole.append(what)
    problems: dict[str, list[str]] = {}
    if whole:
        text = f"baseline stale: {'; '.join(whole)}; {_ACCEPT}"
        for cond in [*after["cells"], "fairness"]:
            problems[cond] = [text]
        return problems
    old_specs = before.get("conditions") or {}
    for cond, spec in (after.get("conditions") or {}).items():
        if cond not in old_specs or cond not in before.get("cells", {}):
            continue  # a new condition: compare_to_baseline says so
        changes = _spec_changes(old_specs[cond], spec)
        if changes:
            shown = ", ".join(changes[:4]) + (
                f", and {len(changes) - 4} more" if len(changes) > 4 else ""
            )
            text = f"baseline stale: condition {cond} changed ({shown}); {_ACCEPT}"
            problems.setdefault(cond, []).append(text)
            problems.setdefault("fairness", []).append(text)
    return problems


def _newly_flagged(cond: str, before: dict[str, Any], after: dict[str, Any]) -> str:
    """``hum: newly flagged uneven (was inconclusive): caribbean loses 43.8 WER points, us
    19.4; gap U 24.3 (95% CI 6.4–42.2), q 0.011 (baseline: gap 4.1, q 0.3)``."""
    old_flag = before.get("flags", {}).get(cond)
    text = f"{cond}: newly flagged uneven (was {old_flag or 'absent'})"
    now = (after.get("gaps") or {}).get(cond) or {}
    if now.get("gap") is None:
        return text
    absolute = after.get("metric", "absolute") == "absolute"

    def loss(value: Any) -> str:
        if value is None:
            return "?"
        return f"{value:.1f}" if absolute else f"{value * 100:.0f}%"

    unit = " WER points" if absolute else " (relative)"
    text += (
        f": {now.get('worst_group')} loses {loss(now.get('worst_delta'))}{unit}, "
        f"{now.get('best_group')} {loss(now.get('best_delta'))}; gap U {now['gap']:.1f}"
    )
    if now.get("ci_low") is not None and now.get("ci_high") is not None:
        text += f" (95% CI {now['ci_low']:.1f} to {now['ci_high']:.1f})"
    if now.get("q") is not None:
        text += f", q {now['q']:.2g}"
    old = (before.get("gaps") or {}).get(cond) or {}
    if old.get("gap") is not None:
        text += f" (baseline: gap {old['gap']:.1f}"
        text += f", q {old['q']:.2g})" if old.get("q") is not None else ")"
    return text


def unusable_cells(baseline: dict[str, Any]) -> list[str]:
    """The cells of a baseline (as :func:`make_baseline` makes it) that no baseline may hold,
    one line each: items that failed, no scored item, or no WER. Empty when all is well."""
    out: list[str] = []
    cells = baseline.get("cells")
    if not isinstance(cells, dict) or not cells:
        return ["no condition × group cell at all"]
    for cond, groups in cells.items():
        if not isinstance(groups, dict) or not groups:
            out.append(f"{cond}: no group")
            continue
        for group, cell in groups.items():
            cell = cell if isinstance(cell, dict) else {}
            failed, items = cell.get("n_failed") or 0, cell.get("n_items")
            why = []
            if failed:
                why.append(f"{failed} of {items if items is not None else '?'} items failed")
            if items is not None and items - failed <= 0:
                why.append("no scored item")
            if cell.get("wer") is None:
                why.append("no WER")
            if why:
                out.append(f"{cond} / {group}: {', '.join(why)}")
    return out


def _refusal(what: str, cells: list[str], fix: str) -> str:
    shown = "\n  ".join(cells[:20])
    more = f"\n  ... and {len(cells) - 20} more" if len(cells) > 20 else ""
    return f"{what} {len(cells)} cell(s) with failed or no scored items:\n  {shown}{more}\n{fix}"


def compare_to_baseline(
    before: dict[str, Any], after: dict[str, Any], *, tolerance_pts: float
) -> dict[str, list[str]]:
    """Problems per condition (and ``fairness``): a stale baseline (see
    :func:`stale_baseline`; its conditions are not compared), a WER rise beyond
    ``tolerance_pts`` that the current CI also excludes, a newly flagged condition (with its
    gap, q and groups), a condition or group gone missing."""
    problems = stale_baseline(before, after)
    if "fairness" in problems and all(c in problems for c in after["cells"]):
        return problems  # nothing is comparable
    stale = set(problems) - {"fairness"}
    for cond, groups in after["cells"].items():
        if cond in stale:
            continue
        old_groups = before.get("cells", {}).get(cond)
        if old_groups is None:
            problems.setdefault(cond, []).append(
                f"{cond}: not in the baseline (a new condition); accept it with "
                "--lastmile-update-baseline"
            )
            continue
        for group, now in groups.items():
            old = old_groups.get(group)
            if old is None or old.get("wer") is None or now.get("wer") is None:
                if old is None:
                    problems.setdefault(cond, []).append(
                        f"{cond} / {group}: group not in the baseline"
                    )
                continue
            rise = now["wer"] - old["wer"]
            ci_low = now.get("ci_low")
            beyond_ci = ci_low is None or old["wer"] < ci_low
            if rise > tolerance_pts and beyond_ci:
                problems.setdefault(cond, []).append(
                    f"{cond} / {group}: WER rose from {old['wer']:.1f}% to {now['wer']:.1f}% "
                    f"(+{rise:.1f} points; tolerance {tolerance_pts:g}"
                    + (
                        f", 95% CI now {ci_low:.1f}–{now.get('ci_high'):.1f}"
                        if ci_low is not None
                        else ""
                    )
                    + ")"
                )
    for cond in before.get("cells", {}):
        if cond not in after["cells"]:
            problems.setdefault(cond, []).append(f"{cond}: in the baseline but not in this run")
    for cond, flag in after.get("flags", {}).items():
        old_flag = before.get("flags", {}).get(cond)
        if flag == "uneven" and old_flag != "uneven" and cond not in stale:
            text = _newly_flagged(cond, before, after)
            problems.setdefault(cond, []).append(text)
            problems.setdefault("fairness", []).append(text)
    return problems


KEEP_SESSIONS = 3
"""Ended sessions whose run folders stay in the temporary folder (as pytest keeps its own)."""

_LOCK = ".in-use"  # a running session's process id, removed when the session ends


def _session_root(config: pytest.Config) -> Path:
    """This session's folder for pack runs: ``<temp>/lastmile-pytest-<user>/session-*``, made
    on first use and marked in use until the session ends. Ended sessions' folders beyond
    the :data:`KEEP_SESSIONS` newest are removed then, so runs do not pile up; a folder whose
    session is still running (another pytest at the same time) is never removed."""
    import getpass
    import shutil
    import tempfile

    state = config.stash[STATE_KEY]
    if state.root is None:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no name for this uid (a container)
            user = str(os.getuid()) if hasattr(os, "getuid") else "user"
        base = Path(tempfile.gettempdir()) / f"lastmile-pytest-{user}"
        base.mkdir(mode=0o700, exist_ok=True)
        state.root = Path(tempfile.mkdtemp(prefix="session-", dir=base))
        (state.root / _LOCK).write_text(str(os.getpid()), encoding="utf-8")
        ended = sorted(
            (p for p in base.glob("session-*") if p.is_dir() and not _in_use(p)),
            key=lambda p: p.stat().st_mtime,
        )
        for stale in ended[: max(len(ended) - KEEP_SESSIONS, 0)]:
            shutil.rmtree(stale, ignore_errors=True)
    return state.root


def _in_use(folder: Path) -> bool:
    """Whether a running process marked ``folder`` in use (its pid in the mark, alive)."""
    try:
        pid = int((folder / _LOCK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def _release_session_root(config: pytest.Config) -> None:
    """The session ended: its folder is no longer in use (kept, until newer sessions)."""
    state = config.stash.get(STATE_KEY, None)
    if state is not None and state.root is not None:
        (state.root / _LOCK).unlink(missing_ok=True)


def pytest_unconfigure(config: pytest.Config) -> None:
    _release_session_root(config)


def _run_and_compare(config: pytest.Config, pack: Path) -> PackOutcome:
    from lastmile.errors import LastmileError
    from lastmile.run import RunOptions, run_pack, validate_pack
    from lastmile.scenario.pack import load_pack

    out = PackOutcome(pack=pack)
    base_out = _setting(config, "out")
    root = Path(base_out) if base_out else _session_root(config)
    run_dir = root / pack.stem
    n = 1
    while (run_dir / "store.sqlite").exists():
        n += 1
        run_dir = root / f"{pack.stem}-{n}"
    try:
        checked = validate_pack(pack, asr=_setting(config, "asr"))  # every problem at once
        if not checked.ok:
            found = f"{len(checked.problems)} problem(s) found in {pack}"
            out.error = "\n".join([*checked.problems, found])
            return out
        result = run_pack(
            pack,
            RunOptions(
                asr=_setting(config, "asr"),
                out=run_dir,
                limit=_setting(config, "limit"),
                workers=_setting(config, "workers") or 1,
                executor=_setting(config, "executor"),
                ray_address=_setting(config, "ray-address"),
            ),
        )
    except LastmileError as exc:
        out.error = f"{pack}: {exc}"
        return out
    out.summary, out.run_dir = result.summary, result.run_dir
    tolerance = load_pack(pack).pack.fairness.tolerance_pts
    obtained = make_baseline(result.summary)
    baseline_file = _baseline_path(pack)
    bad = unusable_cells(obtained)
    if bad:
        update = config.getoption("lastmile_update_baseline")
        verb = "update" if update else "compare with" if baseline_file.exists() else "write"
        out.error = _refusal(
            f"{pack.name}: refusing to {verb} {baseline_file.name}: this run has",
            bad,
            "A baseline rests on every item being scored: fix the recognizer (each failed "
            f"item's error is in the error column of {result.run_dir / 'items.csv'}) and run "
            "again.",
        )
        return out
    if config.getoption("lastmile_update_baseline"):
        baseline_file.write_text(json.dumps(obtained, indent=2, sort_keys=True) + "\n")
        out.baseline_status = "updated"
        return out
    if not baseline_file.exists():
        baseline_file.write_text(json.dumps(obtained, indent=2, sort_keys=True) + "\n")
        out.baseline_status = "written"
        return out
    try:
        before = json.loads(baseline_file.read_text())
    except json.JSONDecodeError as exc:
        out.error = f"{baseline_file}: not valid JSON ({exc}); delete it to write a new one"
        return out
    if not isinstance(before, dict) or before.get("schema_version") != BASELINE_SCHEMA_VERSION:
        version = before.get("schema_version") if isinstance(before, dict) else None
        why = (
            " (written by an earlier lastmile: it does not record the conditions' specs or "
            "the backend, so what it measured is unknown)"
            if version == 1
            else ""
        )
        out.error = (
            f"{baseline_file}: schema_version {version!r} is not "
            f"{BASELINE_SCHEMA_VERSION}{why}; regenerate it with --lastmile-update-baseline"
        )
        return out
    bad = unusable_cells(before)
    if bad:
        out.error = _refusal(
            f"{baseline_file}: not accepted as a baseline: it has",
            bad,
            "It was written from a run whose recognizer failed. Accept this run's results "
            "(all scored) with --lastmile-update-baseline, or delete the file and run again.",
        )
        return out
    out.problems = compare_to_baseline(before, obtained, tolerance_pts=tolerance)
    if out.problems:
        _obtained_path(pack).write_text(json.dumps(obtained, indent=2, sort_keys=True) + "\n")
        lines = [line for found in out.problems.values() for line in found]
        stale = all(line.startswith("baseline stale:") for line in lines)
        out.baseline_status = "stale" if stale else "regressed"
    else:
        out.baseline_status = "matched"
    return out


@pytest.fixture
def lastmile_run(tmp_path: Path) -> Callable[..., Any]:
    """Run a pack programmatically: ``lastmile_run(pack, asr=None, limit=None, workers=1)``
    returns a :class:`lastmile.run.RunResult` (its ``summary`` is summary.json's content)."""
    from lastmile.run import RunOptions, run_pack

    counter = {"n": 0}

    def run(
        pack: str | Path, *, asr: str | None = None, limit: int | None = None, workers: int = 1
    ) -> Any:
        counter["n"] += 1
        return run_pack(
            pack,
            RunOptions(asr=asr, limit=limit, workers=workers, out=tmp_path / f"run{counter['n']}"),
        )

    return run


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(STATE_KEY, None)
    if state is None or not state.outcomes:
        return
    terminalreporter.section("lastmile")
    for pack, out in state.outcomes.items():
        if out.error:
            terminalreporter.write_line(f"{pack.name}: error: {out.error}")
            continue
        conds = out.summary.get("analysis", {}).get("conditions", [])
        flagged = [c["id"] for c in conds if c.get("flag") == "uneven"]
        verdicts = [c.get("flag") for c in conds if c.get("flag")]
        counts = ", ".join(
            f"{verdicts.count(v)} {v}"
            for v in ("even", "inconclusive", "insufficient-data")
            if verdicts.count(v)
        )
        n_prob = sum(len(v) for k, v in out.problems.items() if k != "fairness")
        terminalreporter.write_line(
            f"{pack.name}: baseline {out.baseline_status}; {len(conds)} conditions; "
            f"{n_prob} regression(s); flagged uneven: {', '.join(flagged) or 'none'}"
            f"{'; ' + counts if counts else ''}; run folder {out.run_dir}"
        )
        for cond in conds:
            if cond.get("flag") in ("inconclusive", "insufficient-data"):
                terminalreporter.write_line(f"  {cond['id']}: {cond['flag']}: {cond.get('note')}")
        degraded = [c for c in conds if not c.get("is_clean")]
        if degraded and all(c.get("flag") == "insufficient-data" for c in degraded):
            terminalreporter.write_line(
                f"  {pack.name}: no condition could be judged, so its fairness test cannot fail "
                "until every group has fairness.min_speakers speakers with scored items"
            )
