"""`hunt_pack`: a hunt over a scenario pack, every candidate rendered and decoded by the run
engine (:func:`lastmile.run.run_pack`), so it is cached, resumable and deterministic.

Each call of the search (a rung of successive halving, the confirmation) is a *stage*: a
folder ``stages/NAME/`` in the hunt folder holding a generated pack (``pack.yaml``: the
pack's settings, a manifest of just the stage's utterances, the stage's candidates as
conditions with their stable ids) and its run folder ``run/``. Item seeds derive from the pack
seed, the condition id and the utterance id, as in any run, so a candidate decoded twice
(another stage, a resumed hunt, the regression pack) renders the same audio and hits the
transcript cache.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from lastmile.errors import ConfigError
from lastmile.hunt.search import HuntResult, UttRef, run_hunt
from lastmile.hunt.settings import HuntSettings
from lastmile.hunt.space import Candidate, Space, build_space
from lastmile.run.files import ensure_dir, refuse_symlink, safe_component, write_text_atomic
from lastmile.scenario.pack import LoadedPack, load_pack

__all__ = ["HUNT_SCHEMA_VERSION", "HuntOptions", "HuntOutcome", "hunt_pack", "space_of_pack"]

HUNT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class HuntOptions:
    """How to hunt. ``top`` ``None``: the pack's ``hunt.top``."""

    budget: int
    target: str | None = None
    top: int | None = None
    out: Path | None = None
    resume: Path | None = None
    asr: str | dict[str, Any] | None = None
    use_cache: bool = True
    cache_path: Path | None = None
    workers: int = 1


@dataclass(frozen=True)
class HuntOutcome:
    """The hunt folder and what it holds."""

    hunt_dir: Path
    result: HuntResult
    regression_pack: Path | None
    report: Path


def space_of_pack(loaded: LoadedPack) -> Space:
    """The pack's ``hunt:`` space, each axis left out taking the pack's own values."""
    settings = loaded.pack.hunt or HuntSettings.model_validate({})
    conds = [c for c in loaded.conditions if not c.is_clean and c.frontend is None]
    return build_space(
        settings,
        pack_noises=[c.noise for c in conds if c.noise is not None],
        pack_snrs=[c.snr_db for c in conds if c.snr_db is not None],
        pack_devices=[c.device for c in conds if c.device is not None],
        pack_channels=[c.channel for c in conds if c.channel is not None],
        pack_reverbs=[c.reverb for c in conds if c.reverb is not None],
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _identity(loaded: LoadedPack, options: HuntOptions, top: int, manifest_digest: str) -> dict:
    return {
        "schema": HUNT_SCHEMA_VERSION,
        "pack_sha256": _sha256(loaded.path),
        "manifest_sha256": manifest_digest,
        "budget": options.budget,
        "target": options.target,
        "top": top,
        "asr": options.asr,
    }


def _absolute_noise(entry: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    noise = entry.get("noise")
    if isinstance(noise, dict) and noise.get("type") == "file":
        path = Path(noise["file"])
        if not path.is_absolute():
            entry = {**entry, "noise": {**noise, "file": str((base_dir / path).resolve())}}
    return entry


class _EngineEvaluator:
    """Evaluates candidates through the run engine, one stage folder per call."""

    def __init__(
        self,
        loaded: LoadedPack,
        space: Space,
        utterances: dict[str, Any],
        hunt_dir: Path,
        options: HuntOptions,
        backend: Any,
        on_step: Callable[[str], None] | None,
    ) -> None:
        self.loaded = loaded
        self.space = space
        self.utterances = utterances
        self.hunt_dir = hunt_dir
        self.options = options
        self.backend = backend
        self.on_step = on_step
        self.log: list[dict[str, Any]] = []
        self.base = loaded.pack.model_dump(
            mode="json",
            exclude={"conditions", "grid", "hunt", "frontend", "mitigation", "corpus"},
            exclude_none=True,
        )
        if options.asr is not None:
            self.base["asr"] = options.asr

    def __call__(
        self, stage: str, cands: Sequence[Candidate], refs: Sequence[UttRef]
    ) -> list[dict[str, Any]]:
        from lastmile.report.run_folder import read_items_csv
        from lastmile.run import RunOptions, run_pack

        stage_dir = ensure_dir(self.hunt_dir, "stages", safe_component(stage))
        group_by = self.loaded.pack.group_by
        rows = []
        for ref in refs:
            utt = self.utterances[ref.id]
            rows.append(
                {
                    "id": utt.id,
                    "audio": str(Path(utt.audio).resolve()),
                    "text": utt.text,
                    "speaker": utt.speaker,
                    group_by: utt.group,
                }
            )
        manifest = stage_dir / "manifest.csv"
        refuse_symlink(manifest)
        with manifest.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=["id", "audio", "text", "speaker", group_by])
            writer.writeheader()
            writer.writerows(rows)
        own_profiles = self.loaded.base_dir / "noise_profiles"
        if own_profiles.is_dir():  # profile names resolve beside the generated pack too
            target = ensure_dir(stage_dir, "noise_profiles")
            for path in sorted(own_profiles.glob("*.y*ml")):
                shutil.copyfile(path, target / path.name)
        pack = {
            **self.base,
            "name": f"{self.loaded.pack.name}-hunt-{stage}",
            "description": f"lastmile hunt of {self.loaded.path.name}: stage {stage}",
            "corpus": {"manifest": "manifest.csv", "format": "csv"},
            "conditions": [
                _absolute_noise(self.space.condition(c), self.loaded.base_dir) for c in cands
            ],
        }
        pack_path = stage_dir / "pack.yaml"
        write_text_atomic(pack_path, yaml.safe_dump(pack, sort_keys=False))
        run_dir = stage_dir / "run"
        resume = run_dir if (run_dir / "store.sqlite").is_file() else None
        options = RunOptions(
            asr=None,
            out=run_dir,
            resume=resume,
            use_cache=self.options.use_cache,
            cache_path=self.options.cache_path,
            workers=self.options.workers,
            reports=False,
            examples_per_condition=0,
        )
        backend = self.backend if self.options.workers <= 1 else None
        before: list[int] = []  # items the stage's store held already (a resumed stage)

        def progress(p: Any) -> None:
            if not before:
                before.append(p.done)

        result = run_pack(pack_path, options, backend=backend, on_progress=progress)
        kept = before[0] if before else 0
        decoded = result.n_items - kept - result.n_cached
        self.log.append(
            {
                "stage": stage,
                "decoded": decoded,
                "cached": result.n_cached,
                "kept": kept,
                "items": result.n_items,
            }
        )
        if self.on_step is not None:
            self.on_step(
                f"{stage}: {len(cands)} candidate(s) on {len(refs)} utterances "
                f"({decoded} decoded, {result.n_cached} from the cache, {kept} kept from "
                "before)"
            )
        return read_items_csv(run_dir / "items.csv")


def _regression_pack(
    loaded: LoadedPack, result: HuntResult, hunt_dir: Path
) -> tuple[Path | None, str]:
    """``PACK.hunt.yaml`` in the hunt folder: the pack with the confirmed conditions only."""
    confirmed = result.confirmed
    if not confirmed:
        return None, "no candidate was confirmed; no regression pack written"
    raw = yaml.safe_load(loaded.path.read_text(encoding="utf-8"))
    for key in ("conditions", "grid", "hunt", "frontend", "mitigation"):
        raw.pop(key, None)
    corpus = dict(raw["corpus"])
    corpus["manifest"] = Path(os.path.relpath(loaded.manifest_path, hunt_dir.resolve())).as_posix()
    raw["corpus"] = corpus
    if loaded.pack.asr != raw.get("asr", loaded.pack.asr):
        raw["asr"] = loaded.pack.asr  # a command program made absolute, as the pack meant it
    raw["name"] = f"{loaded.pack.name}-hunt"
    raw["description"] = (
        f"Conditions that lastmile hunt found on {loaded.path.name} and confirmed uneven on "
        "speakers the search never saw (a regression pack for the pytest plugin)."
    )
    conditions = []
    for finding in confirmed:
        entry = dict(finding.condition)
        noise = entry.get("noise")
        if isinstance(noise, dict) and noise.get("type") == "file":
            path = (loaded.base_dir / noise["file"]).resolve()
            entry["noise"] = {
                **noise,
                "file": Path(os.path.relpath(path, hunt_dir.resolve())).as_posix(),
            }
        conditions.append(entry)
    raw["conditions"] = conditions
    own_profiles = loaded.base_dir / "noise_profiles"
    if own_profiles.is_dir() and own_profiles.resolve() != (hunt_dir / "noise_profiles").resolve():
        target = ensure_dir(hunt_dir, "noise_profiles")
        for path in sorted(own_profiles.glob("*.y*ml")):
            shutil.copyfile(path, target / path.name)
    out = hunt_dir / f"{loaded.path.stem}.hunt.yaml"
    header = (
        f"# Written by lastmile hunt from {loaded.path.name}: {len(conditions)} condition(s) "
        "confirmed uneven on held-out speakers.\n"
    )
    write_text_atomic(out, header + yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))
    load_pack(out)  # it must load as it is written
    return out, f"regression pack: {out.name} ({len(conditions)} condition(s))"


def _default_dir(loaded: LoadedPack) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Path("lastmile-hunts") / f"{loaded.pack.name}-{stamp}"


def hunt_pack(
    pack_path: str | Path,
    options: HuntOptions,
    *,
    on_step: Callable[[str], None] | None = None,
) -> HuntOutcome:
    """Hunt ``pack_path``: search its ``hunt:`` space on the discovery speakers within
    ``options.budget`` decodes, confirm the top candidates on the confirmation speakers,
    write ``hunt.json``, ``trace.json``, ``report.html`` and ``PACK.hunt.yaml`` into the hunt
    folder. Raises :class:`ConfigError` on bad input before anything is decoded."""
    from lastmile.analysis import FairnessSettings
    from lastmile.asr import build_backend
    from lastmile.report.hunt import render_hunt_html
    from lastmile.run.plan import file_sha256, load_pack_corpus

    loaded = load_pack(pack_path)
    settings = loaded.pack.hunt or HuntSettings.model_validate({})
    top = options.top if options.top is not None else settings.top
    if options.budget < 1:
        raise ConfigError(f"--budget: expected a whole number >= 1, got {options.budget}")
    if top < 1:
        raise ConfigError(f"--top: expected a whole number >= 1, got {top}")
    space = space_of_pack(loaded)
    corpus = load_pack_corpus(loaded)
    refs = [UttRef(group=u.group, speaker=u.speaker, id=u.id) for u in corpus.utterances]
    fairness: FairnessSettings = loaded.pack.fairness
    identity = _identity(
        loaded,
        options,
        top,
        file_sha256(loaded.manifest_path) if loaded.manifest_path.is_file() else "",
    )

    # validate the split and the budget before any folder is made or anything decoded
    from lastmile.hunt.search import budget_plan, split_speakers

    where = str(loaded.path.name)
    groups = sorted({r.group for r in refs})
    if options.target is not None and options.target not in groups:
        raise ConfigError(
            f"{where}: --target {options.target!r} is not a group of the corpus "
            f"(group_by {loaded.pack.group_by}); groups: {', '.join(groups)}"
        )
    split = split_speakers(
        refs,
        seed=loaded.pack.seed,
        confirm_share=settings.confirm_share,
        min_speakers=fairness.min_speakers,
        where=where,
    )
    plan = budget_plan(split, top)
    if options.budget < plan["minimum"]:
        raise ConfigError(
            f"{where}: --budget {options.budget} is too small for one round: confirming {top} "
            f"candidates takes {plan['confirm']} decodes (clean included), the discovery "
            f"speakers' clean items {plan['discovery_clean']}, one search bracket "
            f"{plan['bracket']}; give --budget {plan['minimum']} or more (or a smaller --top)"
        )

    if options.resume is not None:
        hunt_dir = Path(options.resume)
        meta_path = hunt_dir / "hunt.json"
        if not meta_path.is_file():
            raise ConfigError(
                f"{hunt_dir}: not a hunt folder (no hunt.json); give the folder a hunt wrote, "
                "or drop --resume"
            )
        refuse_symlink(meta_path)
        stored = json.loads(meta_path.read_text(encoding="utf-8")).get("identity")
        if stored != identity:
            changed = sorted(k for k in identity if (stored or {}).get(k) != identity[k])
            raise ConfigError(
                f"{hunt_dir}: holds another hunt ({', '.join(changed)} differ); resume with the "
                "same pack, corpus, --budget, --target, --top and --asr, or start a new hunt "
                "with another --out"
            )
    else:
        hunt_dir = Path(options.out) if options.out else _default_dir(loaded)
        if (hunt_dir / "hunt.json").exists():
            raise ConfigError(
                f"{hunt_dir}: already holds a hunt; use --resume {hunt_dir} to continue it or "
                "choose another --out"
            )
        hunt_dir.mkdir(parents=True, exist_ok=True)
    for name in ("hunt.json", "trace.json", "report.html", f"{loaded.path.stem}.hunt.yaml"):
        refuse_symlink(hunt_dir / name)
    meta: dict[str, Any] = {
        "schema": HUNT_SCHEMA_VERSION,
        "identity": identity,
        "pack": loaded.path.name,
        "seed": loaded.pack.seed,
        "complete": False,
    }
    write_text_atomic(hunt_dir / "hunt.json", json.dumps(meta, indent=2) + "\n")

    spec = options.asr if options.asr is not None else loaded.pack.asr
    backend = build_backend(spec) if options.workers <= 1 else None
    evaluator = _EngineEvaluator(
        loaded,
        space,
        {u.id: u for u in corpus.utterances},
        hunt_dir,
        options,
        backend,
        on_step,
    )
    result = run_hunt(
        space=space,
        utterances=refs,
        evaluate=evaluator,
        budget=options.budget,
        seed=loaded.pack.seed,
        fairness=fairness,
        top=top,
        target=options.target,
        confirm_share=settings.confirm_share,
        where=where,
        on_step=on_step,
    )
    regression, regression_note = _regression_pack(loaded, result, hunt_dir)
    result.notes.append(regression_note)
    document = hunt_document(loaded, result, identity=identity, top=top)
    write_text_atomic(hunt_dir / "trace.json", json.dumps({"trace": result.trace}, indent=2) + "\n")
    report = hunt_dir / "report.html"
    write_text_atomic(report, render_hunt_html(document, result.trace))
    meta = {**meta, **document, "stages": evaluator.log, "complete": True}
    write_text_atomic(hunt_dir / "hunt.json", json.dumps(meta, indent=2) + "\n")
    return HuntOutcome(hunt_dir=hunt_dir, result=result, regression_pack=regression, report=report)


def hunt_document(
    loaded: LoadedPack, result: HuntResult, *, identity: dict[str, Any], top: int
) -> dict[str, Any]:
    """hunt.json's content (without the trace, which is in trace.json)."""
    return {
        "schema": HUNT_SCHEMA_VERSION,
        "identity": identity,
        "pack": loaded.path.name,
        "name": loaded.pack.name,
        "seed": loaded.pack.seed,
        "target": result.target,
        "top": top,
        "objective": (
            f"gap of {result.target!r} to the mean of the other groups' degradation"
            if result.target
            else "disparity U = max - min of the groups' degradation"
        ),
        "fairness": loaded.pack.fairness.model_dump(mode="json"),
        "budget": result.budget,
        "decodes": result.decodes,
        "search_decodes": result.search_decodes,
        "evaluations": len(result.trace),
        "space": result.space.describe(),
        "split": result.split.to_dict(),
        "findings": [f.to_dict() for f in result.findings],
        "n_confirmed": len(result.confirmed),
        "notes": result.notes,
    }
