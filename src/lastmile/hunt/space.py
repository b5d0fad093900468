"""The space a hunt searches: discrete axes (noise source, hum shape, device, channel, reverb)
and resolution grids over the continuous ones (SNR, hum fundamental).

A :class:`Candidate` is a point of the space as grid indices; :meth:`Space.condition` turns it
into the pack vocabulary (a condition entry with a stable id), so every candidate is rendered
and decoded like any pack condition.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

from lastmile.errors import ConfigError
from lastmile.hunt.settings import HARMONIC_SHAPES, HuntSettings
from lastmile.scenario.specs import ChannelSpec, DeviceSpec, ReverbSpec

__all__ = ["Candidate", "Space", "build_space"]

_DEFAULT_NOISES: tuple[dict[str, Any], ...] = ({"type": "white"}, {"type": "pink"}, {"type": "hum"})


@dataclass(frozen=True, order=True)
class Candidate:
    """A point of the space, as indices into :class:`Space`'s axes (-1: the axis is unused)."""

    noise: int
    snr: int
    fundamental: int = -1
    shape: int = -1
    device: int = 0
    channel: int = 0
    reverb: int = 0


def _num(x: float) -> str:
    return f"{x:g}".replace(".", "p").replace("-", "m")


def _dump(model: Any) -> Any:
    return None if model is None else model.model_dump(mode="json", exclude_defaults=True)


@dataclass(frozen=True)
class Space:
    """Axes of a hunt. ``noises`` are JSON mappings of noise specs (a hum's fundamental and
    harmonics are replaced by the searched values); ``snr_db`` and ``fundamental_hz`` are the
    resolution grids of the continuous axes."""

    noises: tuple[dict[str, Any], ...]
    snr_db: tuple[float, ...]
    fundamental_hz: tuple[float, ...]
    shapes: tuple[str, ...]
    devices: tuple[DeviceSpec | None, ...]
    channels: tuple[ChannelSpec | None, ...]
    reverbs: tuple[float | None, ...]

    # -- structure ----------------------------------------------------------------------
    def is_hum(self, noise: int) -> bool:
        return self.noises[noise].get("type") == "hum"

    @property
    def size(self) -> int:
        """Points in the exhaustive grid at this resolution."""
        per_snr = sum(
            len(self.fundamental_hz) * len(self.shapes) if self.is_hum(i) else 1
            for i in range(len(self.noises))
        )
        return (
            per_snr * len(self.snr_db) * len(self.devices) * len(self.channels) * len(self.reverbs)
        )

    def grid(self) -> Iterator[Candidate]:
        """Every point of the exhaustive grid (what a grid search would decode)."""
        for i in range(len(self.noises)):
            tone = (
                list(product(range(len(self.fundamental_hz)), range(len(self.shapes))))
                if self.is_hum(i)
                else [(-1, -1)]
            )
            for (f, s), j, d, c, r in product(
                tone,
                range(len(self.snr_db)),
                range(len(self.devices)),
                range(len(self.channels)),
                range(len(self.reverbs)),
            ):
                yield Candidate(i, j, f, s, d, c, r)

    def sample(self, rng: np.random.Generator) -> Candidate:
        """A uniform draw: noise source first (each equally likely), then every other axis."""
        i = int(rng.integers(len(self.noises)))
        hum = self.is_hum(i)
        return Candidate(
            noise=i,
            snr=int(rng.integers(len(self.snr_db))),
            fundamental=int(rng.integers(len(self.fundamental_hz))) if hum else -1,
            shape=int(rng.integers(len(self.shapes))) if hum else -1,
            device=int(rng.integers(len(self.devices))),
            channel=int(rng.integers(len(self.channels))),
            reverb=int(rng.integers(len(self.reverbs))),
        )

    def neighbors(self, c: Candidate) -> list[Candidate]:
        """Points one or two grid steps away on a continuous axis, or one change on a
        discrete axis (noise source, hum shape, device, channel, reverb)."""
        out: list[Candidate] = []

        def moved(**kw: int) -> None:
            out.append(Candidate(**{**c.__dict__, **kw}))

        for step in (-2, -1, 1, 2):
            if 0 <= c.snr + step < len(self.snr_db):
                moved(snr=c.snr + step)
            if c.fundamental >= 0 and 0 <= c.fundamental + step < len(self.fundamental_hz):
                moved(fundamental=c.fundamental + step)
        if c.shape >= 0:
            for s in range(len(self.shapes)):
                if s != c.shape:
                    moved(shape=s)
        for axis, n in (
            ("device", len(self.devices)),
            ("channel", len(self.channels)),
            ("reverb", len(self.reverbs)),
        ):
            for k in range(n):
                if k != getattr(c, axis):
                    moved(**{axis: k})
        for i in range(len(self.noises)):
            if i != c.noise:
                hum = self.is_hum(i)
                f = (
                    (c.fundamental if c.fundamental >= 0 else len(self.fundamental_hz) // 2)
                    if hum
                    else -1
                )
                s = (c.shape if c.shape >= 0 else 0) if hum else -1
                moved(noise=i, fundamental=f, shape=s)
        return out

    # -- the pack vocabulary ------------------------------------------------------------
    def noise_spec(self, c: Candidate) -> dict[str, Any]:
        spec = dict(self.noises[c.noise])
        if self.is_hum(c.noise):
            spec["fundamental_hz"] = self.fundamental_hz[c.fundamental]
            spec["harmonics_db"] = list(HARMONIC_SHAPES[self.shapes[c.shape]])
        return spec

    def condition_id(self, c: Candidate) -> str:
        """A stable readable id, e.g. ``hum120-odd_snr5_narrowband-handset_g711u_rt0p5``."""
        noise = self.noises[c.noise]
        kind = noise.get("type")
        if kind == "hum":
            head = f"hum{_num(self.fundamental_hz[c.fundamental])}-{self.shapes[c.shape]}"
        elif kind == "tone":
            head = f"tone{_num(float(noise['freq_hz']))}"
        elif kind == "profile":
            head = str(noise["profile"])
        elif kind == "file":
            head = "file-" + "".join(ch if ch.isalnum() else "-" for ch in Path(noise["file"]).stem)
        else:
            head = str(kind)
        parts = [head, f"snr{_num(self.snr_db[c.snr])}"]
        rt = self.reverbs[c.reverb]
        if rt is not None:
            parts.append(f"rt{_num(rt)}")
        dev = self.devices[c.device]
        if dev is not None:
            name = dev.name
            if dev.agc:
                name += "-agc"
            if dev.clip_dbfs is not None:
                name += f"-clip{_num(dev.clip_dbfs)}"
            parts.append(name)
        ch = self.channels[c.channel]
        if ch is not None:
            codec = {"g711-ulaw": "g711u", "g711-alaw": "g711a"}.get(ch.codec, ch.codec)
            if ch.bitrate_kbps is not None:
                codec += _num(ch.bitrate_kbps) + "k"
            if ch.band_hz is not None:
                codec += f"-band{_num(ch.band_hz[0])}-{_num(ch.band_hz[1])}"
            if ch.clip_dbfs is not None:
                codec += f"-clip{_num(ch.clip_dbfs)}"
            parts.append(codec)
        return "_".join(parts)

    def condition(self, c: Candidate) -> dict[str, Any]:
        """The candidate as a pack ``conditions:`` entry (plain JSON data, with its id)."""
        entry: dict[str, Any] = {
            "id": self.condition_id(c),
            "noise": self.noise_spec(c),
            "snr_db": self.snr_db[c.snr],
        }
        rt = self.reverbs[c.reverb]
        if rt is not None:
            entry["reverb"] = {"rt60_s": rt}
        if self.devices[c.device] is not None:
            entry["device"] = _dump(self.devices[c.device])
        if self.channels[c.channel] is not None:
            entry["channel"] = _dump(self.channels[c.channel])
        return entry

    def params(self, c: Candidate) -> dict[str, Any]:
        """The candidate's values by axis (for the trace and the plots)."""
        noise = self.noises[c.noise]
        kind = noise.get("type")
        name = {"profile": noise.get("profile"), "file": noise.get("file")}.get(str(kind), kind)
        dev, ch, rt = self.devices[c.device], self.channels[c.channel], self.reverbs[c.reverb]
        return {
            "noise": name,
            "snr_db": self.snr_db[c.snr],
            "fundamental_hz": self.fundamental_hz[c.fundamental] if c.fundamental >= 0 else None,
            "harmonics": self.shapes[c.shape] if c.shape >= 0 else None,
            "device": None if dev is None else dev.name,
            "channel": None if ch is None else self.condition_id(c).split("_")[-1],
            "reverb_rt60_s": rt,
        }

    def describe(self) -> dict[str, Any]:
        return {
            "noise": [dict(n) for n in self.noises],
            "snr_db": list(self.snr_db),
            "fundamental_hz": list(self.fundamental_hz),
            "harmonics": list(self.shapes),
            "devices": [_dump(d) for d in self.devices],
            "channels": [_dump(c) for c in self.channels],
            "reverb_rt60_s": list(self.reverbs),
            "grid_points": self.size,
        }


def _snr_grid(lo: float, hi: float, step: float) -> tuple[float, ...]:
    n = int(math.floor((hi - lo) / step + 1e-9))
    return tuple(round(lo + k * step, 6) for k in range(n + 1))


def _fundamental_grid(lo: float, hi: float, per_octave: int) -> tuple[float, ...]:
    n = int(math.floor(per_octave * math.log2(hi / lo) + 1e-9))
    return tuple(round(lo * 2.0 ** (k / per_octave), 1) for k in range(n + 1))


def _unique(values: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def build_space(
    settings: HuntSettings,
    *,
    pack_noises: Sequence[Any] = (),
    pack_snrs: Sequence[float] = (),
    pack_devices: Sequence[DeviceSpec] = (),
    pack_channels: Sequence[ChannelSpec] = (),
    pack_reverbs: Sequence[ReverbSpec] = (),
) -> Space:
    """The space of ``settings``, each axis left out taking the pack's own values."""
    if settings.noise is not None:
        noises = [
            n.model_dump(mode="json", exclude_defaults=True) | {"type": n.type}
            for n in settings.noise
        ]
    elif pack_noises:
        noises = [
            n.model_dump(mode="json", exclude_defaults=True) | {"type": n.type} for n in pack_noises
        ]
    else:
        noises = [dict(n) for n in _DEFAULT_NOISES]
    for n in noises:  # a hum's fundamental and harmonics are searched, not fixed
        if n["type"] == "hum":
            n.pop("fundamental_hz", None)
            n.pop("harmonics_db", None)
    noises = _unique(noises)
    if settings.snr_db is not None:
        lo, hi = settings.snr_db
    elif len(set(pack_snrs)) >= 2:
        lo, hi = min(pack_snrs), max(pack_snrs)
    else:
        lo, hi = 0.0, 30.0
    snr = _snr_grid(lo, hi, settings.snr_step_db)
    fund = _fundamental_grid(*settings.hum_fundamental_hz, settings.hum_steps_per_octave)
    devices = settings.devices if settings.devices is not None else [None, *pack_devices]
    channels = settings.channels if settings.channels is not None else [None, *pack_channels]
    reverbs = (
        settings.reverb_rt60_s
        if settings.reverb_rt60_s is not None
        else [None, *(r.rt60_s for r in pack_reverbs)]
    )
    space = Space(
        noises=tuple(noises),
        snr_db=snr,
        fundamental_hz=fund,
        shapes=tuple(settings.hum_harmonics),
        devices=tuple(_unique(devices)),
        channels=tuple(_unique(channels)),
        reverbs=tuple(_unique(reverbs)),
    )
    ids: dict[str, Candidate] = {}
    for c in space.grid():
        cid = space.condition_id(c)
        if cid in ids:
            raise ConfigError(
                f"hunt: two points of the space share the id {cid!r}; make the noise, device "
                "and channel lists distinct"
            )
        ids[cid] = c
    return space
