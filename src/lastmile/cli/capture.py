"""`lastmile capture noise|sweep|device|record`: make noise and device profiles."""

from __future__ import annotations

import re
from pathlib import Path

import click
import numpy as np

from lastmile.cli.common import BadInput, handle_errors
from lastmile.profiles.files import atomic_write_audio

__all__ = ["command"]


def _warn(message: str) -> None:
    click.secho(f"warning: {message}", fg="yellow", err=True)


def _check_name(name: str) -> None:
    from lastmile.profiles.noise_model import PROFILE_NAME_PATTERN

    if not re.match(PROFILE_NAME_PATTERN, name):
        raise BadInput(
            f"--name {name!r}: use letters, digits, '.', '_' and '-' (up to 64, starting with a "
            "letter or digit), e.g. --name ward-3-night"
        )


def _target(out: Path, name: str, *, force: bool) -> Path:
    path = out / f"{name}.yaml"
    if path.exists() and not force:
        raise BadInput(f"{path}: already exists; choose another --name, or pass --force")
    return path


def _profile_folder(out: Path | None, pack: Path | None) -> Path:
    """Where a profile is written: --out, or noise_profiles/ beside --pack (where that pack
    looks for it), or ./noise_profiles."""
    if out is not None and pack is not None:
        raise BadInput("give --out or --pack, not both")
    if pack is not None:
        if not pack.is_file():
            raise BadInput(f"--pack {pack}: pack not found; give the scenario YAML file")
        return pack.parent / "noise_profiles"
    return out if out is not None else Path("noise_profiles")


def _where_packs_look(folder: Path, use: str, pack: Path | None) -> str:
    """The line that says how a pack uses the profile just written."""
    if pack is not None:
        return f"  {pack} finds it: add `{use}` to a condition"
    if folder.name == "noise_profiles":
        return (
            f"  a pack in {folder.parent} finds it (packs look in noise_profiles/ beside the "
            f"pack file, then the shipped profiles): add `{use}` to a condition"
        )
    return (
        f"  packs look in noise_profiles/ beside the pack file, not in {folder}: move it "
        f"there, or capture with --pack PACK; then add `{use}` to a condition"
    )


_PACK_OPTION = click.option(
    "--pack",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write into noise_profiles/ beside this pack file, where the pack looks for profiles.",
)
_OUT_HELP = (
    "Folder for the profile (default: noise_profiles/ beside --pack, else ./noise_profiles)."
)


def _created_by() -> str:
    from lastmile import __version__

    return f"lastmile {__version__}"


@click.group("capture")
def command() -> None:
    """Capture a site's noise or a handset's response as a shareable profile.

    \b
    Example:
      lastmile capture noise ward3.wav --name ward-3
      lastmile capture sweep --out sweep.wav
      lastmile capture device --sweep sweep.wav --recording handset.wav --name handset-x2
    """


@command.command("noise")
@click.argument("recording", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Profile name; writes OUT/NAME.yaml.")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=None, help=_OUT_HELP
)
@_PACK_OPTION
@click.option("--description", default="", help="What and where the recording is.")
@click.option(
    "--keep-clip",
    type=click.FloatRange(min=0.5, max=600.0),
    default=None,
    metavar="SECONDS",
    help="Also keep the first SECONDS of the recording beside the profile (NAME.clip.flac). "
    "Without it the recording is never copied.",
)
@click.option(
    "--allow-speech",
    is_flag=True,
    help="Keep a clip even though speech was detected (only with everyone's consent).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing profile of that name.")
@handle_errors
def noise_command(
    recording: Path,
    name: str,
    out: Path | None,
    pack: Path | None,
    description: str,
    keep_clip: float | None,
    allow_speech: bool,
    force: bool,
) -> None:
    """Profile the noise in RECORDING (any format and rate soundfile reads, at least 10 s):
    its tones, broadband spectrum, periodic events and level statistics.

    The recording is analysed, not copied. When it seems to contain speech you are told,
    and --keep-clip is refused unless --allow-speech is given.

    \b
    Example:
      lastmile capture noise ward3-night.flac --name ward-3-night --pack ward3.yaml \\
          --description "Ward 3, bay B, 02:00, two monitors and a ventilator"
    """
    from lastmile.audio.io import read_audio
    from lastmile.capture.noise import capture_noise_profile
    from lastmile.profiles.noise_model import save_noise_profile

    _check_name(name)
    out = _profile_folder(out, pack)
    target = _target(out, name, force=force)
    loaded = read_audio(recording)
    result = capture_noise_profile(
        loaded.samples,
        sample_rate=loaded.sample_rate,
        name=name,
        description=description,
        source_name=recording.name,
        notes=loaded.notes,
        created_by=_created_by(),
    )
    for note in result.notes:
        _warn(f"{recording}: {note}")
    speech = result.speech
    if speech.detected:
        click.secho(
            f"WARNING: {recording} seems to contain SPEECH (syllable-rate modulation "
            f"{speech.score:.2f} > {speech.threshold:.2f} in {speech.speech_fraction:.0%} of "
            "4 s windows). The profile holds no audio, but check the recording is the noise "
            "you meant, and that nobody's words are in it.",
            fg="red",
            bold=True,
            err=True,
        )
    profile = result.profile
    clip_path = None
    if keep_clip is not None:
        if speech.detected and not allow_speech:
            raise BadInput(
                f"{recording}: not keeping a clip, because speech was detected; pass "
                "--allow-speech only if everyone recorded agreed, or drop --keep-clip"
            )
        n = round(keep_clip * loaded.sample_rate)
        if n > loaded.samples.size:
            raise BadInput(
                f"--keep-clip {keep_clip:g}: the recording is only "
                f"{loaded.samples.size / loaded.sample_rate:.1f} s long"
            )
        clip_path = out / f"{name}.clip.flac"
        profile = profile.model_copy(
            update={"source": profile.source.model_copy(update={"clip_file": clip_path.name})}
        )
        atomic_write_audio(clip_path, loaded.samples[:n], sample_rate=loaded.sample_rate)
    try:
        save_noise_profile(profile, target)
    except BaseException:
        if clip_path is not None:
            clip_path.unlink(missing_ok=True)
        raise
    click.echo(f"wrote {target}")
    if clip_path is not None:
        click.echo(f"wrote {clip_path} ({keep_clip:g} s of the recording)")
    for series in profile.tones:
        click.echo(
            f"  tone series f0={series.fundamental_hz:.3f} Hz, {len(series.harmonics)} "
            f"harmonic(s), drift {series.drift_rms_hz:.3f} Hz rms"
        )
    click.echo(
        f"  broadband {profile.broadband.level_dbfs:.1f} dBFS; overall "
        f"{profile.stats.level_dbfs:.1f} dBFS; stationarity {profile.stats.stationarity:.2f}"
    )
    for train in profile.events:
        click.echo(
            f"  events every {train.period_s:.4f} s (jitter {train.jitter_s * 1000:.1f} ms), "
            f"{train.duration_s * 1000:.0f} ms at {train.level_dbfs:.1f} dBFS"
        )
    click.echo(
        f"  speech detected: {'YES' if speech.detected else 'no'} (score {speech.score:.2f})"
    )
    click.echo(_where_packs_look(out, f"noise: {{profile: {name}}}", pack))


@command.command("sweep")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="WAV file to write (32-bit float).",
)
@click.option("--sample-rate", type=int, default=48000, show_default=True)
@click.option("--f1-hz", type=float, default=20.0, show_default=True, help="Start frequency.")
@click.option(
    "--f2-hz",
    type=float,
    default=None,
    help="End frequency [default: 20000, or 0.45 × --sample-rate when lower].",
)
@click.option(
    "--seconds", type=float, default=10.0, show_default=True, help="Length of the sweep itself."
)
@click.option("--level-dbfs", type=float, default=-6.0, show_default=True, help="Peak level.")
@handle_errors
def sweep_command(
    out: Path,
    sample_rate: int,
    f1_hz: float,
    f2_hz: float | None,
    seconds: float,
    level_dbfs: float,
) -> None:
    """Write an exponential sine sweep, with a sync marker before it, to play through a
    device (then record what the device picks up, and run `capture device`).

    \b
    Example:
      lastmile capture sweep --out sweep.wav --sample-rate 48000 --f1-hz 50 --f2-hz 16000
      lastmile capture sweep --out sweep16k.wav --sample-rate 16000
    """
    from lastmile.capture.sweep import default_f2_hz, make_sweep, write_sweep

    if f2_hz is None:
        f2_hz = default_f2_hz(sample_rate)
    samples, info = make_sweep(
        sample_rate=sample_rate, f1_hz=f1_hz, f2_hz=f2_hz, seconds=seconds, level_dbfs=level_dbfs
    )
    write_sweep(out, samples, info)
    click.echo(
        f"wrote {out}: {samples.size / sample_rate:.2f} s at {sample_rate} Hz "
        f"(marker at {info.marker_offset / sample_rate:.2f} s, sweep {f1_hz:g}-{f2_hz:g} Hz "
        f"from {info.sweep_offset / sample_rate:.2f} s); play it in full and record it"
    )


@command.command("device")
@click.option(
    "--sweep",
    "sweep_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The sweep file written by `capture sweep`.",
)
@click.option(
    "--reference",
    "reference_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Instead of a sweep: a reference microphone's simultaneous recording of the same sound.",
)
@click.option(
    "--recording",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="What the device recorded.",
)
@click.option("--name", required=True, help="Profile name; writes OUT/NAME.yaml.")
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), default=None, help=_OUT_HELP
)
@_PACK_OPTION
@click.option("--description", default="", help="The device and how it was measured.")
@click.option(
    "--ir-ms",
    type=click.FloatRange(5.0, 1000.0),
    default=100.0,
    show_default=True,
    help="Length of the impulse-response window after its peak (sweep method).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing profile of that name.")
@handle_errors
def device_command(
    sweep_path: Path | None,
    reference_path: Path | None,
    recording: Path,
    name: str,
    out: Path | None,
    pack: Path | None,
    description: str,
    ir_ms: float,
    force: bool,
) -> None:
    """Measure a device profile from a recording of the sweep (or against a reference
    microphone) and write OUT/NAME.yaml: magnitude response, usable band, noise floor,
    distortion; packs then use it as `device: NAME`.

    \b
    Example:
      lastmile capture device --sweep sweep.wav --recording handset-x2.wav --name handset-x2
      lastmile capture device --reference ref-mic.wav --recording handset.wav --name handset-y
    """
    from lastmile.audio.io import read_audio
    from lastmile.capture.device import (
        capture_device_from_reference,
        capture_device_from_sweep,
    )
    from lastmile.capture.sweep import read_sweep
    from lastmile.profiles.device_model import save_device_profile

    if (sweep_path is None) == (reference_path is None):
        raise BadInput("give exactly one of --sweep SWEEP.wav or --reference REF.wav")
    _check_name(name)
    out = _profile_folder(out, pack)
    target = _target(out, name, force=force)
    if sweep_path is not None:
        sweep, info = read_sweep(sweep_path)
        loaded = read_audio(recording, sample_rate=info.sample_rate)
        for note in loaded.notes:
            _warn(f"{recording}: {note}")
        profile = capture_device_from_sweep(
            loaded.samples.astype(np.float64),
            sweep,
            info,
            name=name,
            description=description,
            recording_name=recording.name,
            ir_length_s=ir_ms / 1000.0,
            notes=loaded.notes,
            created_by=_created_by(),
        )
    elif reference_path is not None:
        ref = read_audio(reference_path)
        loaded = read_audio(recording, sample_rate=ref.sample_rate)
        for note in (*ref.notes, *loaded.notes):
            _warn(note)
        profile = capture_device_from_reference(
            loaded.samples,
            ref.samples,
            sample_rate=ref.sample_rate,
            name=name,
            description=description,
            recording_name=recording.name,
            reference_name=reference_path.name,
            notes=(*ref.notes, *loaded.notes),
            created_by=_created_by(),
        )
    else:  # unreachable: exactly one was checked above
        raise BadInput("give --sweep or --reference")
    save_device_profile(profile, target)
    lo, hi = profile.usable_band_hz
    click.echo(f"wrote {target}")
    ref_hz = profile.response.reference_freq_hz
    latency_ms = profile.source.latency_s * 1000
    click.echo(
        f"  usable band {lo:.0f}-{hi:.0f} Hz (within 10 dB of {ref_hz:g} Hz); "
        f"latency {latency_ms:.1f} ms"
    )
    click.echo(
        f"  noise floor {profile.noise_floor_dbfs:.1f} dBFS; measurement SNR "
        f"{profile.measurement_snr_db:.1f} dB"
    )
    if profile.distortion is not None:
        pairs = ", ".join(
            f"{f:g} Hz {v:.2f} %"
            for f, v in zip(profile.distortion.freqs_hz, profile.distortion.values, strict=True)
        )
        click.echo(f"  THD: {pairs}")
    if profile.coherence is not None:
        table = profile.coherence
        in_band = [v for f, v in zip(table.freqs_hz, table.values, strict=True) if lo <= f <= hi]
        if in_band:
            click.echo(f"  coherence in the usable band: min {min(in_band):.3f}")
    click.echo(_where_packs_look(out, f"device: {name}", pack))


@command.command("record")
@click.option("--seconds", type=float, default=30.0, show_default=True)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Audio file to write (.wav or .flac).",
)
@click.option("--sample-rate", type=int, default=48000, show_default=True)
@click.option(
    "--device",
    "device",
    default=None,
    help="Input device index or name (see `python -m sounddevice`).",
)
@handle_errors
def record_command(seconds: float, out: Path, sample_rate: int, device: str | None) -> None:
    """Record the site's noise from a microphone (needs `pip install 'lastmile[capture]'`).

    \b
    Example:
      lastmile capture record --seconds 120 --out ward3-night.wav
      lastmile capture noise ward3-night.wav --name ward-3-night
    """
    from lastmile.capture.record import record_microphone

    chosen: int | str | None = int(device) if device is not None and device.isdigit() else device
    click.echo(f"recording {seconds:g} s ...", err=True)
    samples = record_microphone(seconds=seconds, sample_rate=sample_rate, device=chosen)
    atomic_write_audio(out, samples, sample_rate=sample_rate)
    click.echo(f"wrote {out} ({samples.size / sample_rate:.1f} s at {sample_rate} Hz)")
