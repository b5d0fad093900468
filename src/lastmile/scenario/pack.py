"""The scenario pack: YAML validated by pydantic, conditions expanded with stable ids.

See shared DESIGN "Pack format". Unknown keys are rejected; every error names the file and
the field (``conditions[2].snr_db``), what was found, what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from dataclasses import dataclass, replace
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from lastmile.analysis.settings import FairnessSettings
from lastmile.errors import ConfigError
from lastmile.frontend.specs import FrontEndStageSpec, MitigationSettings
from lastmile.hunt.settings import HuntSettings
from lastmile.scenario.specs import (
    ChannelSpec,
    DeviceSpec,
    NoiseSpec,
    ReverbSpec,
    StrictModel,
    noise_shorthand,
)

if TYPE_CHECKING:
    from lastmile.corpus import Corpus

__all__ = [
    "CLEAN_ID",
    "FRONTEND_NAME_PATTERN",
    "SNR_RANGE_DB",
    "Condition",
    "ConditionEntry",
    "CorpusRef",
    "Grid",
    "LoadedPack",
    "Pack",
    "RunSettings",
    "item_seed_sequence",
    "load_pack",
    "pack_json_schema",
]

CLEAN_ID = "clean"
FRONTEND_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""Front-end chain names: letters, digits, ``.``, ``_``, ``-`` (a condition run through
chain NAME gets the id ``CONDITION+NAME``)."""
SNR_RANGE_DB = (-10.0, 60.0)
_NOISE_TYPES = ("white", "pink", "brown", "hum", "tone", "file", "profile")
_FRONTEND_TYPES = ("notch", "highpass", "spectral-gate", "rnnoise", "command")


def _device_shorthand(value: Any) -> Any:
    if isinstance(value, str):
        return {"name": value}
    return value


def _check_snr(value: float) -> float:
    lo, hi = SNR_RANGE_DB
    if not lo <= value <= hi:
        raise ValueError(f"expected a number in [{lo:g}, {hi:g}], got {value:g}")
    return value


class CorpusRef(StrictModel):
    """Where the clean speech is and how its columns are named."""

    manifest: str = Field(
        description="The corpus, relative to the pack file: a CSV, TSV or JSONL manifest, a "
        "NeMo manifest, a Common Voice TSV, or a folder (Kaldi data dir, folder of wav+txt)."
    )
    format: Literal["auto", "csv", "tsv", "jsonl", "kaldi", "nemo", "commonvoice", "folder"] = (
        Field(
            "auto",
            description="How to read `manifest`; auto picks by what it is (a folder with "
            "wav.scp: kaldi; another folder: folder; a .tsv with client_id: commonvoice; JSON "
            "lines with audio_filepath: nemo; else by extension).",
        )
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Our field → the manifest's column (id, audio, text, speaker, group).",
    )
    quoting: Literal["csv", "none"] | None = Field(
        None,
        description="How fields of a CSV or TSV file are quoted: csv (RFC 4180: a field may "
        "be wrapped in double quotes, a quote inside it doubled; read strictly) or none "
        "(every character literal: quotes are text). Default: csv for manifests and "
        "speakers.csv, none for Common Voice TSVs.",
    )
    per_speaker: int | None = Field(
        None, ge=1, description="Use only the first N utterances (by id) of every speaker."
    )


class ConditionEntry(StrictModel):
    """One entry of `conditions:`; a list of SNRs or devices expands into several."""

    id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$",
        description="The condition's id in reports (default: a slug of its spec, e.g. "
        "hum60_snr10_narrowband-handset_g711u); a list of SNRs or devices adds a suffix.",
    )
    noise: NoiseSpec | None = Field(
        None,
        description="Acoustic noise added at snr_db: white, pink, brown, {type: hum, ...}, "
        "{type: tone, ...}, {file: PATH} or {profile: NAME}.",
    )
    snr_db: float | list[float] | None = Field(
        None,
        description="Signal-to-noise ratio in dB (active speech level, ITU-T P.56, over the "
        "noise's RMS), in [-10, 60]; a list gives one condition per value.",
    )
    device: DeviceSpec | list[DeviceSpec | None] | None = Field(
        None,
        description="The microphone or handset: a name, or {name, agc, clip_dbfs}; a list "
        "gives one condition per device (null: none).",
    )
    channel: ChannelSpec | None = Field(
        None, description="Transmission after the device: codec, band limit, clipping."
    )
    reverb: ReverbSpec | None = Field(
        None, description="Room reverberation applied to the speech before the noise."
    )

    @field_validator("noise", mode="before")
    @classmethod
    def _noise(cls, v: Any) -> Any:
        return noise_shorthand(v)

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [_device_shorthand(x) for x in v]
        return _device_shorthand(v)

    @field_validator("snr_db")
    @classmethod
    def _snr(cls, v: float | list[float] | None) -> float | list[float] | None:
        if isinstance(v, list):
            if not v:
                raise ValueError("an empty list of SNRs; give at least one value")
            return [_check_snr(x) for x in v]
        return None if v is None else _check_snr(v)

    @model_validator(mode="after")
    def _noise_needs_snr(self) -> ConditionEntry:
        if self.noise is not None and self.snr_db is None:
            raise ValueError("noise given without snr_db; add snr_db: <dB> (or a list)")
        if self.noise is None and self.snr_db is not None:
            raise ValueError("snr_db given without noise; add noise: {type: pink} or similar")
        return self


def _none_list() -> list[Any]:
    """[None]: a grid axis that leaves the stage out."""
    return [None]


class Grid(StrictModel):
    """A cartesian product of noise × SNR × device × channel, added to the list."""

    noise: list[NoiseSpec] = Field(min_length=1, description="Noises to combine.")
    snr_db: list[float] = Field(min_length=1, description="SNRs in dB to combine.")
    device: list[DeviceSpec | None] = Field(
        default_factory=lambda: _none_list(),
        description="Devices to combine (null: none); default [null].",
    )
    channel: list[ChannelSpec | None] = Field(
        default_factory=lambda: _none_list(),
        description="Channels to combine (null: none); default [null].",
    )

    @field_validator("noise", mode="before")
    @classmethod
    def _noise(cls, v: Any) -> Any:
        return [noise_shorthand(x) for x in v] if isinstance(v, list) else v

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, v: Any) -> Any:
        return [_device_shorthand(x) for x in v] if isinstance(v, list) else v

    @field_validator("snr_db")
    @classmethod
    def _snr(cls, v: list[float]) -> list[float]:
        return [_check_snr(x) for x in v]


class RunSettings(StrictModel):
    """How a run of the pack is judged as a run (the pack's ``run:`` mapping)."""

    max_failed_share: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="Largest share of items that may fail (backend errors, unreadable audio, "
        "timeouts) for the run to count as a result. Above it, the run folder keeps every "
        "item (items.csv, run.json) but the run fails: the CLI exits 3 and lists the "
        "distinct errors with their counts. 0 allows no failed item, 1 any number.",
    )
    executor: Literal["local", "ray"] = Field(
        default="local",
        description="Where items are decoded: `local` (worker processes on this machine) or "
        '`ray` (one actor per worker on a Ray cluster; needs `pip install "lastmile[ray]"` '
        "on the driver and the workers). The CLI's --executor overrides it.",
    )
    ray_address: str | None = Field(
        default=None,
        description="With `executor: ray`, the cluster's address (`HOST:PORT` of the head "
        "node, `ray://HOST:PORT` for Ray Client, or `auto`); unset: a local Ray is started for "
        "the run and stopped after it. The CLI's --ray-address overrides it.",
    )


class Pack(StrictModel):
    """A scenario pack (the public contract: extend it, don't rename it)."""

    name: str = Field(min_length=1, description="The pack's name, shown in reports.")
    description: str = Field("", description="What site, devices and question it is about.")
    seed: int = Field(
        0,
        ge=0,
        description="The one seed: every item's generator derives from it, the condition id "
        "and the utterance id; same pack and seed give byte-identical audio.",
    )
    corpus: CorpusRef = Field(description="The clean speech and how to read it.")
    group_by: str = Field(
        "accent",
        description="The column (attribute) whose values are the groups compared, e.g. "
        "accent, region, l1.",
    )
    asr: str | dict[str, Any] = Field(
        "faster-whisper",
        description="The backend: a spec (faster-whisper, 'faster-whisper:MODEL?beam_size=5', "
        "pocketsphinx, 'command:./my_asr --wav {wav}') or a mapping {name, argument, ...}. "
        "A command's program given as a relative path is relative to the pack file. The "
        "CLI's --asr overrides it.",
    )
    normalizer: str = Field(
        "default",
        description="Text normalization before WER: default (lowercase, punctuation off, "
        "numbers as digits), basic (no number handling), whisper (Whisper's English "
        "normalizer), none (whitespace only).",
    )
    fairness: FairnessSettings = Field(
        default_factory=FairnessSettings,
        description="How disparity between groups is measured, tested and flagged.",
    )
    render_sample_rate: int = Field(
        16000,
        ge=8000,
        le=48000,
        description="Rate at which speech, noise, devices and reverb are rendered; the "
        "corpus is resampled to it (said loudly) and the result to the backend's rate.",
    )
    conditions: list[ConditionEntry] = Field(
        default_factory=list,
        description="The acoustic conditions; the clean reference is always added first.",
    )
    grid: Grid | None = Field(
        None, description="A cartesian product of noise × SNR × device × channel, added."
    )
    run: RunSettings = Field(
        default_factory=RunSettings, description="How a run of the pack is judged as a run."
    )
    frontend: dict[str, list[FrontEndStageSpec]] = Field(
        default_factory=dict,
        description="Named front-end chains (mitigations) applied after the channel, before "
        "the recognizer: NAME: [stage, ...] with stages {type: notch, freqs_hz: [...] | "
        "profile: NAME}, {type: highpass, cutoff_hz}, {type: spectral-gate}, {type: "
        "rnnoise}, {type: command, argv: [...]}. Every condition, clean included, also runs "
        "through each chain on the same items and seeds (id CONDITION+NAME), so the "
        "comparison is paired.",
    )

    mitigation: MitigationSettings = Field(
        default_factory=MitigationSettings,
        description="What the front ends must keep doing when the pack runs under pytest: "
        "{expect: {NAME: {closes_pct_at_least: 50, clean_cost_pts_at_most: 1}}}.",
    )
    hunt: HuntSettings | None = Field(
        None,
        description="What `lastmile hunt` searches: snr_db [low, high], noise sources "
        "(captured profiles too), hum_fundamental_hz and hum_harmonics shapes, devices, "
        "channels (codecs, bitrates), reverb_rt60_s, top, confirm_share; each axis left out "
        "takes the pack's own values.",
    )

    @model_validator(mode="after")
    def _expect_known_frontends(self) -> Pack:
        unknown = [n for n in self.mitigation.expect if n not in self.frontend]
        if unknown:
            raise ValueError(
                f"mitigation.expect: {unknown[0]!r} is not a front end of this pack; "
                f"frontend: has {sorted(self.frontend) or '(none)'}"
            )
        return self

    @field_validator("frontend")
    @classmethod
    def _frontend(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        import re

        for name, stages in v.items():
            if not re.match(FRONTEND_NAME_PATTERN, name):
                raise ValueError(
                    f"chain name {name!r}: use letters, digits, '.', '_' or '-' (up to 64)"
                )
            if not stages:
                raise ValueError(f"chain {name!r} is empty; give at least one stage")
        return v

    @field_validator("normalizer")
    @classmethod
    def _normalizer(cls, v: str) -> str:
        from lastmile.score import NORMALIZERS

        if v not in NORMALIZERS:
            raise ValueError(f"unknown normalizer '{v}'; expected one of {sorted(NORMALIZERS)}")
        return v


@dataclass(frozen=True)
class Condition:
    """One expanded acoustic condition. ``id`` is a stable readable slug or the pack's id."""

    id: str
    noise: NoiseSpec | None = None
    snr_db: float | None = None
    device: DeviceSpec | None = None
    channel: ChannelSpec | None = None
    reverb: ReverbSpec | None = None
    frontend: str | None = None
    """The front-end chain (a name in the pack's ``frontend:``) applied after the channel."""
    base_id: str | None = None
    """With a front end: the id of the same condition without it (its items' seeds)."""

    @property
    def is_clean(self) -> bool:
        return (
            self.noise is None
            and self.device is None
            and self.channel is None
            and (self.reverb is None)
            and self.frontend is None
        )

    @property
    def seed_id(self) -> str:
        """The id an item's seed derives from: without the front end, so a condition and
        its front-end twins render the same noise draws (a paired comparison)."""
        return self.base_id if self.base_id is not None else self.id

    def spec(self) -> dict[str, Any]:
        """The condition as plain JSON data (ids excluded): the cache key's part."""

        def dump(m: Any) -> Any:
            return None if m is None else m.model_dump(mode="json")

        out = {
            "noise": dump(self.noise),
            "snr_db": self.snr_db,
            "device": dump(self.device),
            "channel": dump(self.channel),
            "reverb": dump(self.reverb),
        }
        if self.frontend is not None:  # only then, so keys of other conditions stay as they were
            out["frontend"] = self.frontend
        return out

    def spec_json(self) -> str:
        return json.dumps(self.spec(), sort_keys=True, separators=(",", ":"))

    @property
    def noise_family(self) -> str:
        """What kind of noise: none, white, pink, hum, a profile or file name."""
        n = self.noise
        if n is None:
            return "none"
        if n.type == "profile":
            return n.profile
        if n.type == "file":
            return f"file:{Path(n.file).stem}"
        if n.type == "hum":
            return f"hum{n.fundamental_hz:g}"
        if n.type == "tone":
            return f"tone{n.freq_hz:g}"
        return n.type

    @property
    def label(self) -> str:
        """Human text, e.g. ``hum 60 Hz at 10 dB SNR, narrowband-handset, g711-ulaw``."""
        if self.is_clean:
            return "clean"
        parts = []
        if self.frontend is not None:
            base = Condition(
                id=self.seed_id,
                noise=self.noise,
                snr_db=self.snr_db,
                device=self.device,
                channel=self.channel,
                reverb=self.reverb,
            )
            return f"{base.label}, through front end {self.frontend}"
        n = self.noise
        if n is not None:
            kind = {
                "hum": f"hum {getattr(n, 'fundamental_hz', 0):g} Hz",
                "tone": f"tone {getattr(n, 'freq_hz', 0):g} Hz",
                "profile": f"{getattr(n, 'profile', '')} noise",
                "file": f"noise from {Path(getattr(n, 'file', '')).name}",
            }.get(n.type, f"{n.type} noise")
            parts.append(f"{kind} at {self.snr_db:g} dB SNR")
        if self.reverb is not None:
            parts.append(f"reverb RT60 {self.reverb.rt60_s:g} s")
        if self.device is not None:
            parts.append(self.device.name)
        if self.channel is not None:
            parts.append(_channel_slug(self.channel) or "channel")
        return ", ".join(parts)


def _num(x: float) -> str:
    s = f"{x:g}".replace(".", "p")
    return s.replace("-", "m")


def _noise_slug(n: Any) -> str:
    if n.type == "hum":
        return f"hum{_num(n.fundamental_hz)}"
    if n.type == "tone":
        return f"tone{_num(n.freq_hz)}"
    if n.type == "file":
        return "file-" + "".join(c if c.isalnum() else "-" for c in Path(n.file).stem)
    if n.type == "profile":
        return n.profile
    return str(n.type)


def _channel_slug(c: ChannelSpec) -> str:
    parts = []
    if c.band_hz is not None:
        parts.append(f"band{_num(c.band_hz[0])}-{_num(c.band_hz[1])}")
    if c.codec != "none":
        codec = {"g711-ulaw": "g711u", "g711-alaw": "g711a"}.get(c.codec, c.codec)
        if c.bitrate_kbps is not None:
            codec += _num(c.bitrate_kbps) + "k"
        parts.append(codec)
    if c.clip_dbfs is not None:
        parts.append(f"clip{_num(c.clip_dbfs)}")
    return "_".join(parts)


def _slug(
    noise: Any,
    snr_db: float | None,
    device: DeviceSpec | None,
    channel: ChannelSpec | None,
    reverb: ReverbSpec | None,
) -> str:
    parts = []
    if noise is not None:
        parts.append(_noise_slug(noise))
        parts.append(f"snr{_num(snr_db if snr_db is not None else 0)}")
    if reverb is not None:
        parts.append(f"rt{_num(reverb.rt60_s)}")
    if device is not None:
        d = device.name
        if device.agc:
            d += "-agc"
        if device.clip_dbfs is not None:
            d += f"-clip{_num(device.clip_dbfs)}"
        parts.append(d)
    if channel is not None:
        ch = _channel_slug(channel)
        if ch:
            parts.append(ch)
    return "_".join(parts) or CLEAN_ID


@dataclass(frozen=True)
class LoadedPack:
    """A validated pack, where it came from, and its expanded conditions (clean first)."""

    pack: Pack
    path: Path
    conditions: tuple[Condition, ...]

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def manifest_path(self) -> Path:
        return (self.base_dir / self.pack.corpus.manifest).resolve()

    def load_corpus(self, *, check_audio: bool = True) -> Corpus:
        """The pack's whole corpus (before ``per_speaker``), read with the pack's format,
        columns, group column, normalizer and quoting."""
        from lastmile.corpus import load_corpus

        ref = self.pack.corpus
        return load_corpus(
            self.manifest_path,
            format=ref.format,
            columns=ref.columns,
            group_by=self.pack.group_by,
            check_audio=check_audio,
            normalizer=self.pack.normalizer,
            quoting=ref.quoting,
        )

    def condition(self, condition_id: str) -> Condition:
        for c in self.conditions:
            if c.id == condition_id:
                return c
        known = ", ".join(c.id for c in self.conditions)
        raise ConfigError(f"{self.path}: no condition '{condition_id}'; the pack has: {known}")


def _expand(pack: Pack, path: Path) -> tuple[Condition, ...]:
    out: list[Condition] = [Condition(id=CLEAN_ID)]
    for index, entry in enumerate(pack.conditions):
        snrs = entry.snr_db if isinstance(entry.snr_db, list) else [entry.snr_db]
        devices = entry.device if isinstance(entry.device, list) else [entry.device]
        multi = len(snrs) * len(devices) > 1
        for snr, device in product(snrs, devices):
            slug = _slug(entry.noise, snr, device, entry.channel, entry.reverb)
            if entry.id is None:
                cid = slug
            elif multi:
                suffix = []
                if len(snrs) > 1:
                    suffix.append(f"snr{_num(snr if snr is not None else 0)}")
                if len(devices) > 1:
                    suffix.append(device.name if device is not None else "nodevice")
                cid = "_".join([entry.id, *suffix])
            else:
                cid = entry.id
            cond = Condition(
                id=cid,
                noise=entry.noise,
                snr_db=snr,
                device=device,
                channel=entry.channel,
                reverb=entry.reverb,
            )
            if cond.is_clean and cid != CLEAN_ID:
                raise ConfigError(
                    f"{path}: conditions[{index}]: '{cid}' is the clean reference, which is "
                    "always present; remove it or give it noise, a device or a channel"
                )
            if cond.is_clean:
                continue
            out.append(cond)
    if pack.grid is not None:
        g = pack.grid
        for noise, snr, device, channel in product(g.noise, g.snr_db, g.device, g.channel):
            cid = _slug(noise, snr, device, channel, None)
            out.append(Condition(id=cid, noise=noise, snr_db=snr, device=device, channel=channel))
    seen: dict[str, Condition] = {}
    unique: list[Condition] = []
    for cond in out:
        if cond.id in seen:
            if seen[cond.id].spec() == cond.spec():
                continue
            raise ConfigError(
                f"{path}: two different conditions share the id '{cond.id}'; give one of "
                "them an explicit id:"
            )
        seen[cond.id] = cond
        unique.append(cond)
    if not pack.frontend:
        return tuple(unique)
    # the front-end axis: each condition, then its twins through every chain (same seeds)
    out = []
    for cond in unique:
        out.append(cond)
        for name in pack.frontend:
            twin = replace(cond, id=f"{cond.id}+{name}", frontend=name, base_id=cond.id)
            if twin.id in seen:
                raise ConfigError(
                    f"{path}: condition id '{twin.id}' (condition '{cond.id}' through front "
                    f"end '{name}') is already a condition's id; rename one of them"
                )
            out.append(twin)
    return tuple(out)


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    skip_next_tag = False
    for i, part in enumerate(loc):
        if loc[0] == "frontend" and i == 3 and part in _FRONTEND_TYPES:
            continue  # frontend.NAME[k].<type tag>
        if skip_next_tag and isinstance(part, str) and part in _NOISE_TYPES:
            skip_next_tag = False
            continue
        skip_next_tag = part == "noise" or (isinstance(part, int) and out.endswith("noise"))
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("DeviceSpec", "ChannelSpec", "list[nullable[DeviceSpec]]") or (
            isinstance(part, str) and part.startswith(("nullable", "list[", "float", "none"))
        ):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _validation_message(path: Path, exc: ValidationError) -> str:
    lines = []
    seen = set()
    for err in exc.errors():
        loc = _format_loc(tuple(err["loc"]))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key; check the spelling (see `lastmile schema` for allowed keys)"
        elif err["type"] == "missing":
            msg = "required but missing"
        got = err.get("input")
        text = f"{path}: {loc}: {msg}"
        if err["type"] not in ("extra_forbidden", "missing") and not isinstance(got, dict | list):
            text += f", got {got!r}"
        if text not in seen:
            seen.add(text)
            lines.append(text)
    return "\n".join(lines)


def _resolve_command(argument: str, base_dir: Path) -> str:
    """A command line whose program, when given as a relative path (``./asr.sh``,
    ``bin/asr``), is made absolute against the pack's folder; bare names (found on PATH) and
    absolute paths are left as they are."""
    try:
        words = shlex.split(argument)
    except ValueError:
        return argument  # the backend reports the unbalanced quote
    if not words:
        return argument
    program = words[0]
    if os.path.isabs(program) or "/" not in program.replace("\\", "/"):
        return argument
    resolved = str((base_dir / program).resolve())
    stripped = argument.lstrip()
    if stripped.startswith(program):
        return shlex.quote(resolved) + stripped[len(program) :]
    return shlex.join([resolved, *words[1:]])


def _resolve_asr(asr: str | dict[str, Any], base_dir: Path) -> str | dict[str, Any]:
    """The pack's ``asr`` with a ``command:`` program path made relative to the pack file
    (one rule for every path in a pack)."""
    if isinstance(asr, dict):
        argument = asr.get("argument")
        if asr.get("name") in ("command", "command-server") and isinstance(argument, str):
            return {**asr, "argument": _resolve_command(argument, base_dir)}
        return asr
    name, sep, rest = asr.partition(":")
    if name.strip() in ("command", "command-server") and sep and rest.strip():
        return f"{name}:{_resolve_command(rest, base_dir)}"
    return asr


def load_pack(path: str | Path) -> LoadedPack:
    """Read, validate and expand a pack. Raises :class:`ConfigError` naming file and field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: pack not found; give the path of a scenario YAML file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: invalid YAML ({exc})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level (name:, corpus:, ...)")
    try:
        pack = Pack.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_validation_message(path, exc)) from exc
    resolved_asr = _resolve_asr(pack.asr, path.resolve().parent)
    if resolved_asr != pack.asr:
        pack = pack.model_copy(update={"asr": resolved_asr})
    return LoadedPack(pack=pack, path=path.resolve(), conditions=_expand(pack, path))


def pack_json_schema() -> dict[str, Any]:
    """The JSON Schema of a pack (what `lastmile schema` prints)."""
    schema = Pack.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "lastmile scenario pack"
    return schema


def item_seed_sequence(seed: int, condition_id: str, utterance_id: str) -> np.random.SeedSequence:
    """SeedSequence(entropy=sha256(f"{seed}/{condition_id}/{utterance_id}")) (DESIGN "Seeds")."""
    digest = hashlib.sha256(f"{seed}/{condition_id}/{utterance_id}".encode()).hexdigest()
    return np.random.SeedSequence(entropy=int(digest, 16))


def item_seed_hex(seed: int, condition_id: str, utterance_id: str) -> str:
    """The item seed's sha256 as hex: recorded with every result."""
    return hashlib.sha256(f"{seed}/{condition_id}/{utterance_id}".encode()).hexdigest()
