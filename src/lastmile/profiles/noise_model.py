"""The noise profile file (``noise_profiles/NAME.yaml``, ``schema_version: 1``) and its loader.

A noise profile is a compact, shareable description of a site's noise, from which
:class:`lastmile.profiles.synthesis.ProfileNoise` synthesizes noise of any length. It holds
no audio. Its parts (all levels in dBFS, RMS re full scale 1.0, so a full-scale sine is
-3.01 dBFS; spectra as one-sided power spectral density in dB re full scale² per Hz):

- ``tones``: harmonic series (mains hum, fan or motor whine, monitor tones): an estimated
  fundamental, each harmonic's frequency and level, and the slow random drift of the
  fundamental (RMS deviation and time scale; harmonics drift in proportion).
- ``broadband``: what is left once tones and events are removed: a spectral envelope on a
  fractional-octave grid, its total level, a slow level wander and, optionally, the fast
  envelope modulation (syllabic-rate swells of babble) of a few acoustic bands.
- ``events``: periodic transients (gradient knocks, monitor beeps, conveyor clunks): period,
  jitter, duration, level, a temporal envelope, a spectrum and any tones inside the event.
- ``stats``: level statistics of the recording and a stationarity measure (descriptive; not
  used for synthesis).
- ``source``: what the recording was (length, rate, notes, whether speech was detected);
  never the recording itself, unless a clip was asked for (``clip_file``).

The JSON Schema is ``lastmile/schemas/noise_profile.schema.json`` (from
``NoiseProfile.model_json_schema()``); unknown keys are rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from lastmile.errors import ConfigError
from lastmile.profiles.files import (
    atomic_write_text,
    dump_profile_yaml,
    format_validation_error,
    read_profile_mapping,
)
from lastmile.scenario.specs import StrictModel

__all__ = [
    "PROFILE_NAME_PATTERN",
    "Broadband",
    "EventTone",
    "EventTrain",
    "LevelStats",
    "Modulation",
    "ModulationBand",
    "NoiseProfile",
    "ProfileNotFoundError",
    "SourceInfo",
    "Spectrum",
    "ToneHarmonic",
    "ToneSeries",
    "find_profile_file",
    "list_profile_files",
    "load_noise_profile",
    "profile_search_dirs",
    "save_noise_profile",
]

PROFILE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
"""Profile names: letters, digits, ``.``, ``_`` and ``-``; up to 64 characters."""


class ProfileNotFoundError(ConfigError, LookupError):
    """No profile file of that name in the search folders."""


class Spectrum(StrictModel):
    """A spectral envelope: values at ascending frequencies, interpolated linearly in dB
    against log-frequency and held flat beyond the ends (zero above ``source.sample_rate_hz/2``)."""

    freqs_hz: tuple[float, ...] = Field(min_length=2, description="Ascending, > 0.")
    psd_db: tuple[float, ...] = Field(
        min_length=2,
        description="Power spectral density in dB re full scale² per Hz (broadband), or "
        "relative dB (event spectra, maximum 0 dB).",
    )

    @model_validator(mode="after")
    def _check(self) -> Spectrum:
        if len(self.freqs_hz) != len(self.psd_db):
            raise ValueError(
                f"freqs_hz has {len(self.freqs_hz)} values but psd_db has {len(self.psd_db)}; "
                "they must pair up"
            )
        if self.freqs_hz[0] <= 0 or any(
            b <= a for a, b in zip(self.freqs_hz, self.freqs_hz[1:], strict=False)
        ):
            raise ValueError("freqs_hz must be positive and strictly increasing")
        return self


class ToneHarmonic(StrictModel):
    number: int = Field(ge=1, le=1000, description="Harmonic number (1 is the fundamental).")
    freq_hz: float = Field(gt=0, description="Mean frequency measured for this harmonic.")
    level_dbfs: float = Field(ge=-200, le=10, description="RMS level of this sinusoid.")


class ToneSeries(StrictModel):
    """A harmonic series: ``freq_hz`` of every harmonic moves with the fundamental's drift."""

    fundamental_hz: float = Field(
        gt=0, description="Least-squares fundamental over the harmonics found."
    )
    drift_rms_hz: float = Field(
        ge=0, description="RMS deviation of the fundamental around its mean (slow drift)."
    )
    drift_timescale_s: float = Field(
        gt=0, description="Time for the drift's autocorrelation to fall to 1/e."
    )
    harmonics: tuple[ToneHarmonic, ...] = Field(min_length=1)


class ModulationBand(StrictModel):
    """The envelope modulation of one acoustic band of the broadband part."""

    low_hz: float = Field(ge=0, description="Lower edge of the acoustic band.")
    high_hz: float = Field(gt=0, description="Upper edge of the acoustic band.")
    depth_db: float = Field(
        ge=0,
        le=30,
        description="Standard deviation of the band's level envelope (dB, frames at "
        "frame_rate_hz) beyond what steady noise of the same spectrum shows.",
    )
    mod_power_db: tuple[float, ...] = Field(
        min_length=2,
        description="That modulation's power per octave of modulation frequency "
        "(at mod_freqs_hz), dB re the strongest octave (maximum 0).",
    )


class Modulation(StrictModel):
    """Fast amplitude modulation of the broadband part, per acoustic band."""

    frame_rate_hz: float = Field(gt=0, description="Rate of the level envelope.")
    mod_freqs_hz: tuple[float, ...] = Field(
        min_length=2, description="Centres of the octaves of modulation frequency, ascending."
    )
    band_correlation: float = Field(
        ge=0, le=1, description="Correlation of the modulation between acoustic bands."
    )
    bands: tuple[ModulationBand, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Modulation:
        if any(b <= a for a, b in zip(self.mod_freqs_hz, self.mod_freqs_hz[1:], strict=False)):
            raise ValueError("mod_freqs_hz must be strictly increasing")
        for i, band in enumerate(self.bands):
            if len(band.mod_power_db) != len(self.mod_freqs_hz):
                raise ValueError(
                    f"bands[{i}].mod_power_db has {len(band.mod_power_db)} values but "
                    f"mod_freqs_hz has {len(self.mod_freqs_hz)}; they must pair up"
                )
            if band.high_hz <= band.low_hz:
                raise ValueError(f"bands[{i}]: high_hz must be above low_hz")
        return self


class Broadband(StrictModel):
    level_dbfs: float = Field(ge=-200, le=10, description="RMS level of the broadband part.")
    bands_per_octave: int = Field(ge=1, le=48, description="Resolution of the envelope.")
    spectrum: Spectrum
    wander_db: float = Field(
        ge=0, le=20, description="RMS of the slow level wander (dB) beyond steady noise."
    )
    wander_timescale_s: float = Field(gt=0, description="Time scale of that wander.")
    modulation: Modulation | None = Field(
        default=None,
        description="Fast envelope modulation per acoustic band (optional; without it the "
        "broadband part is steady apart from its wander).",
    )


class EventTone(StrictModel):
    freq_hz: float = Field(gt=0)
    level_db: float = Field(le=0.5, description="Power relative to the whole event, dB.")


class EventTrain(StrictModel):
    """Periodic transients: onsets ``t0 + k·period_s + N(0, jitter_s²)``."""

    period_s: float = Field(gt=0, le=60)
    jitter_s: float = Field(ge=0, description="Standard deviation of onset times around the grid.")
    duration_s: float = Field(gt=0, description="Span of the envelope (above -20 dB re peak).")
    level_dbfs: float = Field(ge=-200, le=10, description="RMS level over duration_s.")
    level_std_db: float = Field(ge=0, le=20, description="Event-to-event level variation.")
    envelope_step_s: float = Field(gt=0)
    envelope_db: tuple[float, ...] = Field(
        min_length=2, description="Power envelope from onset, dB re its peak, every step."
    )
    noise_level_db: float = Field(
        le=0.5,
        description="Energy of the noise-like part relative to the whole event, dB "
        "(informational: synthesis fills with noise what the tones leave of the spectrum).",
    )
    spectrum: Spectrum = Field(
        description="Energy spectrum of the whole event, tones included (relative dB, maximum 0)."
    )
    tones: tuple[EventTone, ...] = Field(
        default=(), description="Tones inside the event (beeps, ringing resonances)."
    )


class LevelStats(StrictModel):
    level_dbfs: float = Field(description="RMS level of the whole recording (DC removed).")
    l10_dbfs: float = Field(description="Level exceeded 10 % of the time (125 ms frames).")
    l50_dbfs: float
    l90_dbfs: float
    short_term_std_db: float = Field(ge=0, description="Std. dev. of 1 s levels.")
    stationarity: float = Field(
        ge=0,
        le=1,
        description="exp(-short_term_std_db / 3 dB): 1 is perfectly steady; 0.5 means 1 s "
        "levels wander by about 2 dB.",
    )


class SourceInfo(StrictModel):
    file: str | None = Field(default=None, description="Name of the recording (no folders).")
    duration_s: float = Field(gt=0)
    sample_rate_hz: int = Field(gt=0)
    notes: tuple[str, ...] = Field(default=(), description="What was done to the recording.")
    speech_detected: bool
    speech_score: float = Field(
        ge=0, description="Syllable-rate modulation depth (see lastmile.capture.speech)."
    )
    clip_file: str | None = Field(
        default=None, description="Kept clip beside the profile, if asked."
    )
    created_by: str = ""


class NoiseProfile(StrictModel):
    """A noise profile file, ``schema_version: 1``."""

    schema_version: Literal[1] = 1
    kind: Literal["noise"] = "noise"
    name: str = Field(pattern=PROFILE_NAME_PATTERN)
    description: str = ""
    source: SourceInfo
    stats: LevelStats
    tones: tuple[ToneSeries, ...] = ()
    broadband: Broadband
    events: tuple[EventTrain, ...] = ()

    @field_validator("tones")
    @classmethod
    def _sorted_harmonics(cls, tones: tuple[ToneSeries, ...]) -> tuple[ToneSeries, ...]:
        for series in tones:
            numbers = [h.number for h in series.harmonics]
            if len(set(numbers)) != len(numbers):
                raise ValueError(f"series at {series.fundamental_hz} Hz repeats a harmonic number")
        return tones

    @property
    def max_freq_hz(self) -> float:
        """Highest frequency the profile describes (the source's Nyquist frequency)."""
        return self.source.sample_rate_hz / 2.0


_HEADER = (
    "lastmile noise profile (schema_version 1).\n"
    "Schema: lastmile/schemas/noise_profile.schema.json; fields: noise_profiles/README.md.\n"
    "Levels in dBFS (RMS re full scale); spectra in dB re full scale^2 per Hz.\n"
    "Regenerate with `lastmile capture noise RECORDING --name NAME`."
)


def save_noise_profile(profile: NoiseProfile, path: str | Path) -> Path:
    """Write ``profile`` as YAML to ``path`` atomically (temporary file, then rename)."""
    return atomic_write_text(Path(path), dump_profile_yaml(profile, header=_HEADER))


def _load_noise_file(path: Path) -> NoiseProfile:
    data = read_profile_mapping(path, kind="noise")
    try:
        return NoiseProfile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(path, exc)
            + "\nfix the field(s) named above, or recapture the profile"
        ) from None


def list_profile_files(search_dirs: Sequence[str | Path]) -> list[Path]:
    """Every ``*.yaml`` profile file in ``search_dirs`` (first folder wins for a name)."""
    seen: dict[str, Path] = {}
    for folder in search_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.yaml")):
            seen.setdefault(path.stem, path)
    return list(seen.values())


def profile_search_dirs(
    extra: Sequence[str | Path] = (), *, base_dir: str | Path | None = None
) -> list[Path]:
    """Where profile names are looked up, in order: ``extra`` folders, ``BASE/noise_profiles``
    (beside a pack; the current folder for the command line) when it exists, then the
    shipped profiles."""
    from lastmile.resources import shipped_dir

    dirs = [Path(d) for d in extra]
    if base_dir is not None and (Path(base_dir) / "noise_profiles").is_dir():
        dirs.append(Path(base_dir) / "noise_profiles")
    dirs.append(shipped_dir("noise_profiles"))
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in {u.resolve() for u in unique}:
            unique.append(d)
    return unique


def find_profile_file(name: str, search_dirs: Sequence[str | Path]) -> Path:
    """The file of profile ``name`` (``NAME.yaml``) in the first of ``search_dirs`` holding it.

    ``name`` may also be a path to a ``.yaml`` file. Raises :class:`ProfileNotFoundError`
    (a :class:`ConfigError` and a :class:`LookupError`) listing the folders and the names found.
    """
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    for folder in search_dirs:
        path = Path(folder) / f"{name}.yaml"
        if path.is_file():
            return path
    known = sorted(p.stem for p in list_profile_files(search_dirs) if _is_profile_file(p))
    folders = ", ".join(str(d) for d in search_dirs) or "(none)"
    raise ProfileNotFoundError(
        f"profile {name!r}: not found: no {name}.yaml in {folders} (a pack looks in "
        "noise_profiles/ beside the pack file, then in the shipped profiles); known profiles: "
        f"{', '.join(known) or '(none)'}. Capture it with `lastmile capture noise --pack PACK` "
        "or `lastmile capture device --pack PACK`, or check the spelling"
    )


def _is_profile_file(path: Path) -> bool:
    """Whether ``path`` says it is a noise or device profile (``kind: noise|device``), so a
    scenario pack or other YAML in the same folder is not listed as a profile."""
    try:
        with path.open(encoding="utf-8") as handle:
            head = handle.read(4096)
    except (OSError, UnicodeDecodeError):
        return False
    return any(line.strip() in ("kind: noise", "kind: device") for line in head.splitlines())


def load_noise_profile(
    name_or_path: str | Path, *, search_dirs: Sequence[str | Path] = ()
) -> NoiseProfile:
    """Load a noise profile by name (``NAME.yaml`` in the first of ``search_dirs``) or path.

    Raises :class:`ConfigError` naming the file and field for unknown keys, an unsupported
    ``schema_version``, a device profile given as a noise profile, or bad values.
    """
    path = find_profile_file(str(name_or_path), search_dirs)
    return _load_noise_file(path)
