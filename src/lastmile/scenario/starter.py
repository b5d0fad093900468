"""A first pack in one command: survey a corpus, then write a commented starter pack.

:func:`survey_corpus` finds the corpus's format with the loaders' own detection, maps the
usual alternative column names (``utt_id``, ``path``, ``sentence``, ``client_id``, ...),
picks the group column, loads the corpus with the real loader and counts speakers per
group against the pack's ``min_speakers``. :func:`starter_pack_text` writes a pack that
uses the site's own profiles (``noise_profiles/`` beside the pack) and lists the shipped
ones as comments; :func:`write_starter_pack` checks it loads and that every condition can
be built before it is written.
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lastmile.errors import ConfigError

__all__ = [
    "GROUP_COLUMNS",
    "CorpusSurvey",
    "GroupCount",
    "ProfileChoice",
    "find_corpus",
    "find_profiles",
    "starter_pack_text",
    "survey_corpus",
    "write_starter_pack",
]

GROUP_COLUMNS = (
    "accent",
    "accents",
    "dialect",
    "region",
    "variety",
    "variant",
    "l1",
    "native_language",
    "first_language",
    "language",
    "country",
    "group",
    "gender",
    "age",
)
"""Columns tried, in order, as the group when none is given."""

_ALTERNATIVES: Mapping[str, tuple[str, ...]] = {
    "id": ("id", "utt_id", "utterance_id", "uttid", "utt", "key", "segment_id"),
    "audio": ("audio", "path", "audio_path", "audio_filepath", "wav", "file", "filename"),
    "text": ("text", "transcript", "transcription", "sentence", "normalized_text", "words"),
    "speaker": ("speaker", "speaker_id", "spk", "spk_id", "client_id", "talker", "participant"),
}
_NOT_GROUPS = {"utt2spk", "spk2utt", "utt2dur", "utt2num_frames", "utt2uniq", "spk2warp"}
_NAME_RE = re.compile(r"[^A-Za-z0-9._-]+")
_GENERIC_NAMES = {"manifest", "validated", "test", "train", "dev", "data", "list", "metadata"}


@dataclass(frozen=True)
class GroupCount:
    """One group: its speakers and utterances, and how many more speakers it needs."""

    name: str
    speakers: int
    utterances: int
    speakers_short: int


@dataclass(frozen=True)
class CorpusSurvey:
    """What :func:`survey_corpus` found."""

    source: Path
    format: str
    columns: dict[str, str]
    group_by: str
    group_candidates: tuple[str, ...]
    groups: tuple[GroupCount, ...]
    utterances: int
    speakers: int
    min_speakers: int

    @property
    def short_groups(self) -> tuple[GroupCount, ...]:
        return tuple(g for g in self.groups if g.speakers_short > 0)


@dataclass(frozen=True)
class ProfileChoice:
    """Profiles by kind: the site's (beside the pack) and the shipped ones."""

    site_noise: tuple[str, ...] = ()
    site_devices: tuple[str, ...] = ()
    shipped_noise: tuple[str, ...] = ()
    shipped_devices: tuple[str, ...] = ()
    elsewhere: tuple[Path, ...] = field(default=())


def find_corpus(folder: Path) -> Path:
    """The one corpus in ``folder``: a Kaldi data dir (``wav.scp``), or the only manifest
    (``.csv``, ``.tsv``, ``.jsonl``, ``.json``; ``speakers.csv`` excepted), or a folder of
    wav+txt with ``speakers.csv``. Raises :class:`ConfigError` listing what was found."""
    if (folder / "wav.scp").is_file():
        return folder
    manifests = sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and p.suffix.lower() in (".csv", ".tsv", ".jsonl", ".json")
        and p.name != "speakers.csv"
        and not p.name.startswith(".")
    )
    if len(manifests) == 1:
        return manifests[0]
    if not manifests and (folder / "speakers.csv").is_file():
        return folder
    found = ", ".join(p.name for p in manifests) or "no manifest, no wav.scp, no speakers.csv"
    raise ConfigError(
        f"{folder}: cannot tell which corpus to use ({found}); give it: lastmile init "
        "path/to/manifest.csv (or a Kaldi data dir, or a folder of wav+txt)"
    )


def _first_line_columns(path: Path, delimiter: str) -> list[str]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return next(csv.reader([handle.readline()], delimiter=delimiter), [])
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read as UTF-8 text ({exc})") from exc


def _json_keys(path: Path) -> list[str]:
    import json

    keys: list[str] = []
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle):
                if number >= 200:
                    break
                if line.strip():
                    obj = json.loads(line)
                    if isinstance(obj, dict):
                        keys += [k for k in obj if k not in keys]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot be read as JSON lines ({exc})") from exc
    return keys


def _available(source: Path, fmt: str) -> list[str]:
    """Column (or key, or table) names the corpus offers, for mapping and grouping."""
    if fmt in ("csv", "tsv", "commonvoice"):
        return _first_line_columns(source, "\t" if fmt != "csv" else ",")
    if fmt in ("jsonl", "nemo"):
        return _json_keys(source)
    if fmt == "folder":
        table = source / "speakers.csv"
        return _first_line_columns(table, ",") if table.is_file() else []
    if fmt == "kaldi":
        names = []
        for path in sorted(source.iterdir()):
            for prefix in ("utt2", "spk2"):
                if path.name.startswith(prefix) and path.name not in _NOT_GROUPS:
                    names.append(path.name[len(prefix) :])
        return names
    return []


def _map_columns(
    fmt: str, available: Sequence[str], given: Mapping[str, str], source: Path
) -> dict[str, str]:
    """corpus.columns for a CSV/TSV/JSONL manifest whose columns have other usual names."""
    columns = dict(given)
    if fmt not in ("csv", "tsv", "jsonl"):
        return columns
    lower = {c.lower(): c for c in available}
    for ours, names in _ALTERNATIVES.items():
        if ours in columns:
            continue
        found = next((lower[n] for n in names if n in lower), None)
        if found is None:
            raise ConfigError(
                f"{source}: no {ours} column (have: {', '.join(available) or 'none'}); name it "
                f"with --column {ours}=YOUR_COLUMN"
            )
        if found != ours:
            columns[ours] = found
    return columns


def survey_corpus(
    source: str | Path,
    *,
    group_by: str | None = None,
    columns: Mapping[str, str] | None = None,
    min_speakers: int | None = None,
) -> CorpusSurvey:
    """Find ``source``'s format, columns and group column, load it with the real loader
    (audio presence not checked) and count speakers per group.

    ``min_speakers`` defaults to the pack default (``fairness.min_speakers``). Raises
    :class:`ConfigError` (or :class:`lastmile.corpus.CorpusProblems`, listing every row) when
    the corpus cannot be read.
    """
    from lastmile.analysis.settings import FairnessSettings
    from lastmile.corpus import detect_format, load_corpus

    source = Path(source)
    if not source.exists():
        raise ConfigError(f"{source}: not found; give a manifest, a Kaldi data dir or a folder")
    fmt = detect_format(source)
    available = _available(source, fmt)
    mapped = _map_columns(fmt, available, dict(columns or {}), source)
    taken = {mapped.get(k, k) for k in _ALTERNATIVES}
    lower = {c.lower(): c for c in available if c not in taken}
    candidates = tuple(lower[g] for g in GROUP_COLUMNS if g in lower)
    if fmt == "commonvoice":  # the loader reads `accents` (or `accent`) for group_by accent
        candidates = tuple("accent" if c in ("accents", "accent") else c for c in candidates)
        candidates = tuple(dict.fromkeys(candidates))
    if group_by is None:
        if not candidates:
            raise ConfigError(
                f"{source}: no group column found (looked for {', '.join(GROUP_COLUMNS)}; "
                f"have: {', '.join(available) or 'none'}); name it with --group-by COLUMN"
            )
        group_by = candidates[0]
    corpus = load_corpus(source, columns=mapped or None, group_by=group_by, check_audio=False)
    if min_speakers is None:
        min_speakers = int(FairnessSettings().min_speakers)
    speakers: dict[str, set[str]] = {}
    utterances: dict[str, int] = {}
    for utt in corpus.utterances:
        speakers.setdefault(utt.group, set()).add(utt.speaker)
        utterances[utt.group] = utterances.get(utt.group, 0) + 1
    groups = tuple(
        GroupCount(
            name=g,
            speakers=len(speakers[g]),
            utterances=utterances[g],
            speakers_short=max(0, min_speakers - len(speakers[g])),
        )
        for g in sorted(speakers)
    )
    return CorpusSurvey(
        source=source,
        format=fmt,
        columns=mapped,
        group_by=group_by,
        group_candidates=candidates,
        groups=groups,
        utterances=len(corpus),
        speakers=len(corpus.speakers),
        min_speakers=min_speakers,
    )


def find_profiles(pack_dir: Path, *, also: Sequence[Path] = ()) -> ProfileChoice:
    """Profiles a pack in ``pack_dir`` would find (its ``noise_profiles/``, then the shipped
    ones), by kind; ``also``: other profile folders (e.g. ``./noise_profiles``) whose
    profiles the pack would *not* find where they are."""
    from lastmile.profiles.devices import _kind_of
    from lastmile.profiles.noise_model import list_profile_files
    from lastmile.resources import shipped_dir

    def by_kind(folder: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
        noise, devices = [], []
        for path in list_profile_files([folder]):
            kind = _kind_of(path)
            if kind == "noise":
                noise.append(path.stem)
            elif kind == "device":
                devices.append(path.stem)
        return tuple(noise), tuple(devices)

    site = pack_dir / "noise_profiles"
    site_noise, site_devices = by_kind(site) if site.is_dir() else ((), ())
    shipped_noise, shipped_devices = by_kind(shipped_dir("noise_profiles"))
    elsewhere: list[Path] = []
    for folder in also:
        if not folder.is_dir() or folder.resolve() == site.resolve():
            continue
        elsewhere += [p for p in list_profile_files([folder]) if _kind_of(p) in ("noise", "device")]
    return ProfileChoice(
        site_noise=site_noise,
        site_devices=site_devices,
        shipped_noise=tuple(n for n in shipped_noise if n not in site_noise),
        shipped_devices=tuple(d for d in shipped_devices if d not in site_devices),
        elsewhere=tuple(elsewhere),
    )


def _flow(mapping: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}: {_scalar(v)}" for k, v in mapping.items()) + "}"


def _scalar(text: str) -> str:
    """A YAML scalar for ``text``: plain when it is safely plain, else double-quoted."""
    import json

    if re.fullmatch(r"[A-Za-z0-9_./][A-Za-z0-9_./ -]*", text) and text.strip() == text:
        return text
    return json.dumps(text, ensure_ascii=False)


def starter_pack_text(
    survey: CorpusSurvey, *, pack_path: Path, profiles: ProfileChoice, name: str | None = None
) -> str:
    """The starter pack as commented YAML; its corpus path is relative to ``pack_path``."""
    from lastmile import __version__

    pack_dir = pack_path.parent
    manifest = Path(os.path.relpath(survey.source.resolve(), pack_dir.resolve())).as_posix()
    if name is None:
        where = survey.source.resolve()
        stem = where.stem if where.stem.lower() not in _GENERIC_NAMES else where.parent.name
        name = _NAME_RE.sub("-", stem).strip("-") or "site"
    short = survey.short_groups
    lines = [
        f"# Starter scenario pack written by `lastmile init` (lastmile {__version__}).",
        f"# Corpus: {manifest} ({survey.format}): {survey.utterances} utterances, "
        f"{survey.speakers} speakers, {len(survey.groups)} groups by {survey.group_by}.",
        "# Every path in this file is relative to this file. Noise and device profiles are",
        "# looked up in noise_profiles/ beside this file, then in the shipped profiles",
        "# (`lastmile profiles list`); capture your own with `lastmile capture noise|device",
        f"# --pack {pack_path.name}`. Check it with `lastmile validate {pack_path.name}`, then",
        f"# `lastmile run {pack_path.name} --limit 50` for a first look.",
        f"name: {_scalar(name)}",
        f"description: {_scalar(f'Starter pack for {manifest}; say what site and devices.')}",
        "seed: 0  # one seed: same pack and seed give the same audio and results",
        "corpus:",
        f"  manifest: {_scalar(manifest)}  # detected format: {survey.format}",
    ]
    if survey.columns:
        lines.append(f"  columns: {_flow(survey.columns)}  # our field: your column")
    counts = ", ".join(f"{g.name} {g.speakers}" for g in survey.groups[:8])
    more = f", ... ({len(survey.groups) - 8} more)" if len(survey.groups) > 8 else ""
    lines.append(f"group_by: {_scalar(survey.group_by)}  # speakers per group: {counts}{more}")
    others = [c for c in survey.group_candidates if c != survey.group_by]
    if others:
        lines.append(f"# other columns that could group: {', '.join(others)}")
    lines += [
        "asr: faster-whisper  # the default; `lastmile asr list` shows the others",
        "normalizer: default",
        "fairness:",
        f"  min_speakers: {survey.min_speakers}  # a group with fewer gives insufficient-data",
    ]
    if short:
        need = ", ".join(f"{g.name} needs {g.speakers_short} more" for g in short)
        lines.append(f"  # below min_speakers now: {need}")
    lines += ["  # other settings (threshold, alpha, metric): `lastmile schema`", "conditions:"]
    if profiles.site_noise or profiles.site_devices:
        lines.append("  # your site's profiles (noise_profiles/ beside this pack):")
    for noise in profiles.site_noise:
        lines += [f"  - noise: {{profile: {noise}}}", "    snr_db: [20, 10, 5]"]
    for device in profiles.site_devices:
        lines += [f"  - device: {device}"]
    lines += [
        "  # generic conditions: mains hum, pink noise, a narrowband handset over G.711",
        "  - noise: {type: hum, fundamental_hz: 60, harmonics_db: [0, -6, -10, -14]}",
        "    snr_db: [10, 0]",
        "  - noise: pink",
        "    snr_db: [20, 10, 5]",
        "  - id: handset-g711",
        "    device: narrowband-handset",
        "    channel: {codec: g711-ulaw}",
    ]
    if profiles.shipped_noise or profiles.shipped_devices:
        lines.append("  # shipped profiles, ready to use (uncomment):")
    for noise in profiles.shipped_noise:
        lines += [f"  # - noise: {{profile: {noise}}}", "  #   snr_db: [20, 10, 5]"]
    for device in profiles.shipped_devices:
        lines += [f"  # - device: {device}"]
    for path in profiles.elsewhere:
        lines.append(
            f"  # {path.stem}: found in {path.parent}, which this pack does not search; "
            "move it to noise_profiles/ beside this pack to use it"
        )
    return "\n".join(lines) + "\n"


def write_starter_pack(text: str, path: Path, *, force: bool = False) -> Path:
    """Write ``text`` to ``path`` after checking that it loads as a pack and that every
    condition can be built (profiles found, presets known). Refuses an existing file
    unless ``force``."""
    from lastmile.render.engine import Renderer
    from lastmile.scenario.pack import load_pack

    if path.exists() and not force:
        raise ConfigError(f"{path}: already exists; choose another --out, or pass --force")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".yaml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        loaded = load_pack(tmp)
        renderer = Renderer(loaded, sample_rate=16000, render_rate=loaded.pack.render_sample_rate)
        for cond in loaded.conditions:
            renderer.validate_condition(cond)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
