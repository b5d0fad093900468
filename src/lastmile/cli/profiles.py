"""`lastmile profiles list|show|render|compare`: look at and use noise and device profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np
import yaml

from lastmile.cli.common import BadInput, console, handle_errors

__all__ = ["command"]


def _dirs_option(func: Any) -> Any:
    return click.option(
        "--profiles-dir",
        "profiles_dirs",
        multiple=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Also look here (first); then ./noise_profiles and the shipped profiles.",
    )(func)


def _search_dirs(extra: tuple[Path, ...]) -> list[Path]:
    from lastmile.profiles.noise_model import profile_search_dirs

    return profile_search_dirs(extra, base_dir=Path.cwd())


def _kind(path: Path) -> str:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return "unreadable"
    return str(data.get("kind", "?")) if isinstance(data, dict) else "?"


def _load_noise(name: str, dirs: list[Path]) -> Any:
    from lastmile.profiles.noise_model import find_profile_file, load_noise_profile

    path = find_profile_file(name, dirs)
    if _kind(path) == "device":
        raise BadInput(
            f"{path}: {name!r} is a device profile; this command needs a noise profile "
            "(see `lastmile profiles list`)"
        )
    return load_noise_profile(path)


@click.group("profiles")
def command() -> None:
    """Noise and device profiles: list, show, render, compare with a recording.

    \b
    Example:
      lastmile profiles list
      lastmile profiles render hospital-imaging-suite --seconds 10 --out hum.wav
    """


@command.command("list")
@_dirs_option
@handle_errors
def list_command(profiles_dirs: tuple[Path, ...]) -> None:
    """List the profiles a pack can name (first folder wins for a name), and the device
    presets.

    \b
    Example:
      lastmile profiles list --profiles-dir site/noise_profiles
    """
    from rich.table import Table
    from rich.text import Text

    from lastmile.profiles.noise_model import list_profile_files
    from lastmile.profiles.presets import PRESET_NAMES, preset_table

    table = Table()
    table.add_column("name", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("summary")
    table.add_column("where", overflow="fold")
    for path in list_profile_files(_search_dirs(profiles_dirs)):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        kind = str(data.get("kind", "?")) if isinstance(data, dict) else "?"
        cells = (path.stem, kind, _summary(data) if isinstance(data, dict) else "", path.parent)
        table.add_row(*(Text(str(cell)) for cell in cells))  # names and folders: not markup
    for name in PRESET_NAMES:
        table.add_row(name, "preset", Text(preset_table(name).description), "built in")
    console().print(table)


def _summary(data: dict[str, Any]) -> str:
    if data.get("kind") == "noise":
        parts = [f"{data.get('stats', {}).get('level_dbfs', '?')} dBFS"]
        for series in data.get("tones") or []:
            parts.append(f"tones f0 {series.get('fundamental_hz')} Hz")
        for train in data.get("events") or []:
            parts.append(f"events every {train.get('period_s')} s")
        return "; ".join(parts)
    if data.get("kind") == "device":
        band = data.get("usable_band_hz") or ["?", "?"]
        return f"{data.get('method')} measurement, usable {band[0]}-{band[1]} Hz"
    return ""


@command.command("show")
@click.argument("name")
@click.option("--yaml", "as_yaml", is_flag=True, help="Print the profile file itself.")
@_dirs_option
@handle_errors
def show_command(name: str, as_yaml: bool, profiles_dirs: tuple[Path, ...]) -> None:
    """Show a profile (noise or device) or a device preset.

    \b
    Example:
      lastmile profiles show icu-monitors
      lastmile profiles show handset-narrowband --yaml
    """
    from lastmile.profiles.device_model import load_device_profile
    from lastmile.profiles.noise_model import ProfileNotFoundError, find_profile_file
    from lastmile.profiles.presets import PRESET_NAMES, preset_table

    dirs = _search_dirs(profiles_dirs)
    try:
        path = find_profile_file(name, dirs)
    except ProfileNotFoundError:
        if name not in PRESET_NAMES:
            raise
        table = preset_table(name)
        click.echo(f"{name}: built-in device preset\n  {table.description}")
        for f, g in zip(table.freqs_hz, table.gains_db, strict=True):
            click.echo(f"  {f:8g} Hz  {g:+6.1f} dB")
        return
    if as_yaml:
        click.echo(path.read_text(encoding="utf-8"), nl=False)
        return
    if _kind(path) == "device":
        device = load_device_profile(path)
        lo, hi = device.usable_band_hz
        click.echo(f"{device.name}: device profile ({device.method}) from {path}")
        if device.description:
            click.echo(f"  {device.description}")
        click.echo(
            f"  usable band {lo:g}-{hi:g} Hz; noise floor {device.noise_floor_dbfs} dBFS;"
            f" latency {device.source.latency_s * 1000:.1f} ms"
        )
        for f, g in zip(device.response.freqs_hz[::6], device.response.gain_db[::6], strict=True):
            click.echo(f"  {f:9.1f} Hz  {g:+6.1f} dB")
        return
    profile = _load_noise(name, dirs)
    click.echo(f"{profile.name}: noise profile from {path}")
    if profile.description:
        click.echo(f"  {profile.description}")
    src = profile.source
    click.echo(
        f"  source: {src.duration_s:g} s at {src.sample_rate_hz} Hz"
        f"{' (' + src.file + ')' if src.file else ''}; speech detected: "
        f"{'YES' if src.speech_detected else 'no'}"
    )
    stats = profile.stats
    click.echo(
        f"  level {stats.level_dbfs} dBFS (L10 {stats.l10_dbfs}, L90 {stats.l90_dbfs}); "
        f"stationarity {stats.stationarity}"
    )
    for series in profile.tones:
        levels = ", ".join(f"{h.number}:{h.level_dbfs:g}" for h in series.harmonics)
        click.echo(
            f"  tones f0 {series.fundamental_hz} Hz ± {series.drift_rms_hz} Hz; "
            f"harmonic:dBFS {levels}"
        )
    click.echo(f"  broadband {profile.broadband.level_dbfs} dBFS")
    for train in profile.events:
        tones = ", ".join(f"{t.freq_hz:g} Hz" for t in train.tones)
        click.echo(
            f"  events every {train.period_s} s ± {train.jitter_s * 1000:.1f} ms, "
            f"{train.duration_s * 1000:.0f} ms at {train.level_dbfs} dBFS"
            f"{'; tones ' + tones if tones else ''}"
        )


@command.command("render")
@click.argument("name")
@click.option("--seconds", type=click.FloatRange(min=0.01, max=3600.0), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--sample-rate", type=int, default=16000, show_default=True)
@_dirs_option
@handle_errors
def render_command(
    name: str,
    seconds: float,
    seed: int,
    out: Path,
    sample_rate: int,
    profiles_dirs: tuple[Path, ...],
) -> None:
    """Synthesize SECONDS of a noise profile (any length, no loop) to an audio file.

    \b
    Example:
      lastmile profiles render icu-monitors --seconds 30 --seed 7 --out icu.wav
    """
    from lastmile.profiles.files import atomic_write_audio
    from lastmile.profiles.synthesis import ProfileNoise

    if sample_rate < 8000:
        raise BadInput(f"--sample-rate {sample_rate}: use 8000 Hz or more")
    profile = _load_noise(name, _search_dirs(profiles_dirs))
    generator = ProfileNoise(profile)
    n = round(seconds * sample_rate)
    params = generator.draw(np.random.default_rng(seed), n_samples=n, sample_rate=sample_rate)
    samples = generator.render(params, n_samples=n, sample_rate=sample_rate)
    peak = float(np.max(np.abs(samples)))
    if peak >= 1.0:
        raise BadInput(
            f"{name}: the synthesis peaks at {peak:.2f} (above full scale); the "
            "profile's levels are too high to write without clipping"
        )
    atomic_write_audio(out, samples, sample_rate=sample_rate)
    level = 10 * np.log10(max(float(np.mean(samples.astype(np.float64) ** 2)), 1e-30))
    click.echo(f"wrote {out} ({seconds:g} s at {sample_rate} Hz, seed {seed}, {level:.1f} dBFS)")


@command.command("compare")
@click.argument("name")
@click.argument("recording", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the synthesis.")
@click.option(
    "--asr",
    "asr_spec",
    default=None,
    metavar="SPEC",
    help="Also decode the demo subset mixed with the recording and with the "
    "synthesis, and print both WERs.",
)
@click.option(
    "--snr-db", type=float, default=10.0, show_default=True, help="SNR of the --asr mixes."
)
@click.option(
    "--utterances",
    type=click.IntRange(min=1),
    default=28,
    show_default=True,
    help="Demo utterances in the --asr mixes (spread over the speakers).",
)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Mix every --asr utterance this many times, each with new recording offsets and a "
    "new synthesis (narrows wer_diff_se).",
)
@_dirs_option
@handle_errors
def compare_command(
    name: str,
    recording: Path,
    seed: int,
    asr_spec: str | None,
    snr_db: float,
    utterances: int,
    repeats: int,
    profiles_dirs: tuple[Path, ...],
) -> None:
    """Compare a noise profile's synthesis with a RECORDING of the site, as key=value lines:
    lsd_db, tones_matched, max_tone_freq_err_hz, max_tone_level_err_db, events_matched,
    event_period_err_pct (and with --asr: wer_recording, wer_synth, wer_diff, wer_diff_se,
    wer_items; WERs as fractions, so 2 points is 0.02).

    \b
    Example:
      lastmile profiles compare ward-3-night ward3-night.flac
      lastmile profiles compare ward-3-night ward3-night.flac --asr faster-whisper
    """
    from lastmile.audio.io import read_audio
    from lastmile.capture.fidelity import asr_wer_figures, compare_profile

    profile = _load_noise(name, _search_dirs(profiles_dirs))
    loaded = read_audio(recording)
    for note in loaded.notes:
        click.secho(f"warning: {recording}: {note}", fg="yellow", err=True)
    fidelity = compare_profile(
        profile, loaded.samples, sample_rate=loaded.sample_rate, seed=seed, source=str(recording)
    )
    for line in fidelity.lines():
        click.echo(line)
    if asr_spec is not None:
        wer = asr_wer_figures(
            profile,
            loaded.samples,
            sample_rate=loaded.sample_rate,
            asr_spec=asr_spec,
            snr_db=snr_db,
            n_utterances=utterances,
            repeats=repeats,
            seed=seed,
        )
        for line in wer.lines():
            click.echo(line)
