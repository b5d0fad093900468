"""Render one utterance under one condition, in physical order (DESIGN "Render order").

speech (+reverb) + acoustic noise at the target SNR → device response → device AGC/clipping
→ channel (band limit, codec) → front end (a pack's ``frontend:`` chain, at the channel's
rate) → resample to the backend's rate.

Decide, then do: every random choice comes from the item's own generator
(``SeedSequence(sha256(f"{seed}/{condition_id}/{utterance_id}"))``), one child sequence per
stage, and is saved in the item's ``params`` so the item can be replayed exactly. A
condition run through a front end uses the seed of the same condition without it, so both
hear the same noise draws.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lastmile.audio import read_audio, resample, validate_audio
from lastmile.errors import ConfigError
from lastmile.scenario.pack import Condition, LoadedPack, item_seed_sequence

__all__ = ["RENDERER_VERSION", "RenderedItem", "Renderer"]

RENDERER_VERSION = "1"


@dataclass(frozen=True)
class RenderedItem:
    """The audio an ASR hears for one item, and everything drawn to make it.

    ``noise`` is the noise exactly as added (before device and channel) at ``render_rate``,
    ``speech`` the speech as mixed (after reverb and any clip gain) at ``render_rate``.
    """

    audio: np.ndarray
    sample_rate: int
    speech: np.ndarray
    noise: np.ndarray | None
    render_rate: int
    target_snr_db: float | None
    achieved_snr_db: float | None
    params: dict[str, Any] = field(default_factory=dict)


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


class Renderer:
    """Renders items of one pack. Builds generators and device responses once, lazily."""

    def __init__(self, loaded: LoadedPack, *, sample_rate: int, render_rate: int = 16000):
        self.loaded = loaded
        self.sample_rate = int(sample_rate)
        self.render_rate = int(render_rate)
        self._generators: dict[str, Any] = {}
        self._devices: dict[str, Any] = {}
        self._frontends: dict[str, Any] = {}
        self._level_memo: tuple[np.ndarray, int, float] | None = None

    # -- resources ---------------------------------------------------------------------
    def _search_dirs(self) -> list[Path]:
        """Where a pack's profile names are found: PACK_DIR/noise_profiles, then shipped."""
        from lastmile.profiles.noise_model import profile_search_dirs

        return [d for d in profile_search_dirs(base_dir=self.loaded.base_dir) if d.is_dir()]

    def noise_generator(self, condition: Condition) -> Any:
        if condition.noise is None:
            raise ConfigError(f"condition '{condition.id}' has no noise")
        if condition.id not in self._generators:
            from lastmile.profiles import profile_loader
            from lastmile.profiles.generators import make_noise_generator

            self._generators[condition.id] = make_noise_generator(
                condition.noise,
                base_dir=self.loaded.base_dir,
                sample_rate=self.render_rate,
                profile_loader=profile_loader(self._search_dirs()),
            )
        return self._generators[condition.id]

    def device_response(self, name: str) -> Any:
        if name not in self._devices:
            from lastmile.profiles import resolve_device

            self._devices[name] = resolve_device(name, search_dirs=self._search_dirs())
        return self._devices[name]

    def frontend(self, name: str) -> Any:
        """The pack's front-end chain ``name`` (a :class:`lastmile.frontend.FrontEnd`)."""
        if name not in self._frontends:
            from lastmile.frontend import build_frontend

            chains = self.loaded.pack.frontend
            if name not in chains:
                raise ConfigError(
                    f"{self.loaded.path}: no front end '{name}'; the pack has: "
                    f"{', '.join(chains) or '(none)'}"
                )
            self._frontends[name] = build_frontend(
                name, chains[name], base_dir=self.loaded.base_dir, search_dirs=self._search_dirs()
            )
        return self._frontends[name]

    def _profile_file(self, name: str) -> Path | None:
        for folder in self._search_dirs():
            for suffix in (".yaml", ".yml"):
                candidate = folder / f"{name}{suffix}"
                if candidate.is_file():
                    return candidate
        return None

    def condition_key(self, condition: Condition) -> str:
        """The condition spec plus digests of the files it refers to (cache key part)."""
        parts = [condition.spec_json(), f"render_rate={self.render_rate}"]
        noise = condition.noise
        if noise is not None and noise.type == "file":
            parts.append(_file_digest(self.loaded.base_dir / noise.file))
        if noise is not None and noise.type == "profile":
            found = self._profile_file(noise.profile)
            parts.append(_file_digest(found) if found else "missing:" + noise.profile)
        if condition.device is not None:
            found = self._profile_file(condition.device.name)
            parts.append(_file_digest(found) if found else "preset:" + condition.device.name)
        if condition.frontend is not None:  # what the chain resolves to (profile tones, program)
            parts.append("frontend=" + self.frontend(condition.frontend).key())
        return "|".join(parts)

    def validate_condition(self, condition: Condition) -> None:
        """Build what the condition needs now, so a bad file or name fails before the run."""
        if condition.noise is not None:
            self.noise_generator(condition)
        if condition.device is not None:
            self.device_response(condition.device.name)
        if condition.frontend is not None:
            self.frontend(condition.frontend).check(sample_rate=self.frontend_rate(condition))

    def frontend_rate(self, condition: Condition) -> int:
        """The rate a condition's front end runs at: the channel's output rate (8 kHz after
        G.711, ...), found by sending 0.1 s of quiet noise through the channel."""
        if condition.channel is None:
            return self.render_rate
        from lastmile.channel import apply_channel

        probe = np.random.default_rng(0).standard_normal(self.render_rate // 10) * 1e-3
        _, rate, _ = apply_channel(
            probe.astype(np.float32), condition.channel, sample_rate=self.render_rate
        )
        return int(rate)

    def _speech_level(self, signal: np.ndarray, *, sample_rate: int) -> float:
        """The P.56 active level of ``signal``, measured once for the same array: the
        conditions of one utterance without reverb share its clean speech, so the meter
        (half of a noisy item's render time) runs once per utterance, not per condition."""
        from lastmile.audio.levels import active_speech_level

        held = self._level_memo
        if held is not None and held[0] is signal and held[1] == sample_rate:
            return held[2]
        level = active_speech_level(signal, sample_rate=sample_rate).level_dbfs
        self._level_memo = (signal, sample_rate, level)
        return level

    # -- rendering ---------------------------------------------------------------------
    def load_speech(self, audio_path: Path) -> tuple[np.ndarray, tuple[str, ...]]:
        # the notes travel with each item's record; the run says them once per file
        loaded = read_audio(audio_path, sample_rate=self.render_rate, log_notes=False)
        return loaded.samples, loaded.notes

    def render(
        self, speech: np.ndarray, condition: Condition, *, utterance_id: str
    ) -> RenderedItem:
        """Render clean ``speech`` (at ``render_rate``) under ``condition``."""
        speech = validate_audio(speech, source=f"utterance {utterance_id}")
        seed = self.loaded.pack.seed
        rate = self.render_rate
        if condition.is_clean:
            out = resample(speech, orig_sample_rate=rate, sample_rate=self.sample_rate)
            return RenderedItem(
                audio=out,
                sample_rate=self.sample_rate,
                speech=speech,
                noise=None,
                render_rate=rate,
                target_snr_db=None,
                achieved_snr_db=None,
                params={},
            )
        reverb_ss, noise_ss, device_ss = item_seed_sequence(
            seed, condition.seed_id, utterance_id
        ).spawn(3)
        params: dict[str, Any] = {}
        signal = speech
        if condition.reverb is not None:
            from lastmile.render.reverb import apply_reverb

            signal, params["reverb"] = apply_reverb(
                signal, condition.reverb, sample_rate=rate, rng=np.random.default_rng(reverb_ss)
            )
        noise = None
        target = achieved = None
        if condition.noise is not None:
            from lastmile.audio.mix import mix_at_snr

            gen = self.noise_generator(condition)
            drawn = gen.draw(
                np.random.default_rng(noise_ss), n_samples=signal.size, sample_rate=rate
            )
            noise_raw = gen.render(drawn, n_samples=signal.size, sample_rate=rate)
            if condition.snr_db is None:  # the pack schema refuses this; a hand-made one may not
                raise ConfigError(f"condition '{condition.id}': noise without snr_db")
            mixed = mix_at_snr(
                signal,
                noise_raw,
                snr_db=condition.snr_db,
                sample_rate=rate,
                speech_level_dbfs=self._speech_level(signal, sample_rate=rate),
            )
            params["noise"] = drawn
            params["mix"] = {
                "speech_level_dbfs": mixed.speech_level_dbfs,
                "noise_level_dbfs": mixed.noise_level_dbfs,
                "noise_gain_db": mixed.noise_gain_db,
                "clip_gain_db": mixed.clip_gain_db,
            }
            signal, noise, speech = mixed.mix, mixed.noise, mixed.speech
            target, achieved = mixed.target_snr_db, mixed.achieved_snr_db
        if condition.device is not None:
            from lastmile.profiles.presets import apply_device

            signal, params["device"] = apply_device(
                signal,
                condition.device,
                sample_rate=rate,
                response=self.device_response(condition.device.name),
            )
        out_rate = rate
        if condition.channel is not None:
            from lastmile.channel import apply_channel

            signal, out_rate, params["channel"] = apply_channel(
                signal, condition.channel, sample_rate=rate
            )
        if condition.frontend is not None:
            chain = self.frontend(condition.frontend)
            signal = chain.apply(signal, sample_rate=out_rate)
            params["frontend"] = chain.describe()
        del device_ss  # reserved for stochastic device stages; kept so seeds stay stable
        out = resample(signal, orig_sample_rate=out_rate, sample_rate=self.sample_rate)
        return RenderedItem(
            audio=validate_audio(out, source=f"rendered {utterance_id} under {condition.id}"),
            sample_rate=self.sample_rate,
            speech=speech,
            noise=noise,
            render_rate=rate,
            target_snr_db=target,
            achieved_snr_db=achieved,
            params=params,
        )
