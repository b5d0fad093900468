"""What a run would send to its backend, worked out before anything is sent (``--dry-run``).

The plan is made exactly as a run makes it (the pack's conditions, the corpus selection and
``limit``, the transcript cache), but nothing is rendered, decoded or written: each item's
length is its utterance's length (rendering keeps the length), read from the audio file's
header. A remote backend that knows its prices (``estimate(seconds) -> (minutes, usd)``, as
``aws-transcribe`` has) adds an estimated cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lastmile.errors import AudioError, ConfigError

__all__ = ["AudioPlan", "plan_audio"]


@dataclass(frozen=True)
class AudioPlan:
    """The items a run of a pack would decode, and their audio."""

    pack: str
    backend: str  # the backend's spec, as the run would record it
    n_items: int  # every item of the plan
    n_cached: int  # of which the transcript cache already holds
    audio_s: float  # audio to send: the items not cached
    audio_minutes: float
    estimated_usd: float | None  # None: the backend has no price list

    def as_dict(self) -> dict[str, Any]:
        return {
            "pack": self.pack,
            "backend": self.backend,
            "items": self.n_items,
            "cached": self.n_cached,
            "to_send": self.n_items - self.n_cached,
            "audio_s": round(self.audio_s, 3),
            "audio_minutes": round(self.audio_minutes, 3),
            "estimated_usd": None if self.estimated_usd is None else round(self.estimated_usd, 4),
        }


def _duration_s(path: Path) -> float:
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except (OSError, RuntimeError) as exc:
        raise AudioError(f"{path}: cannot read the audio file's header ({exc})") from None
    if info.samplerate <= 0:
        raise AudioError(f"{path}: the header gives a sample rate of {info.samplerate}")
    return float(info.frames) / float(info.samplerate)


def plan_audio(
    pack_path: str | Path,
    *,
    asr: str | dict[str, Any] | None = None,
    limit: int | None = None,
    use_cache: bool = True,
    cache_path: Path | None = None,
    conditions: tuple[str, ...] | None = None,
) -> AudioPlan:
    """The items and audio seconds that ``lastmile run`` would send for ``pack_path`` (with
    ``--asr``, ``--limit``, ``--no-cache``, ``--conditions`` as given), and the backend's
    cost estimate."""
    from lastmile.asr import build_backend
    from lastmile.asr.base import parse_backend_spec
    from lastmile.render.engine import Renderer
    from lastmile.run.engine import only_conditions
    from lastmile.run.plan import file_sha256, iter_plan, load_pack_corpus
    from lastmile.run.store import TranscriptCache, default_cache_path
    from lastmile.scenario.pack import load_pack

    loaded = only_conditions(load_pack(pack_path), conditions)
    spec = asr if asr is not None else loaded.pack.asr
    backend = build_backend(spec)  # builds only: no backend sends anything when built
    corpus = load_pack_corpus(loaded, limit=limit)
    if len(corpus) == 0:
        raise ConfigError(f"{loaded.path}: the corpus selection is empty")
    renderer = Renderer(
        loaded, sample_rate=backend.sample_rate, render_rate=loaded.pack.render_sample_rate
    )
    condition_keys = {c.id: renderer.condition_key(c) for c in loaded.conditions}
    durations = {u.id: _duration_s(Path(u.audio)) for u in corpus.utterances}
    path = cache_path or default_cache_path()
    # an absent cache holds nothing; it is not created by a dry run
    cache = TranscriptCache(path) if use_cache and path.is_file() else None
    fingerprint = backend.fingerprint()

    def digest(utt: Any) -> str:
        try:
            return file_sha256(Path(utt.audio))
        except OSError as exc:
            return f"unreadable:{exc.strerror or type(exc).__name__}"

    to_send: list[float] = []
    n_items = n_cached = 0
    for item in iter_plan(
        loaded, corpus.utterances, condition_keys=condition_keys, audio_digest=digest
    ):
        n_items += 1
        if cache is not None and cache.get(item.cache_key, fingerprint) is not None:
            n_cached += 1
        else:
            to_send.append(durations[item.utterance.id])
    usd: float | None = None
    price_list = getattr(backend, "estimate", None)
    if callable(price_list):
        _minutes, usd = price_list(to_send)
    audio_s = float(sum(to_send))
    spec_text = str(parse_backend_spec(spec)) if not isinstance(spec, str) else spec
    return AudioPlan(
        pack=str(loaded.path),
        backend=spec_text,
        n_items=n_items,
        n_cached=n_cached,
        audio_s=audio_s,
        audio_minutes=audio_s / 60.0,
        estimated_usd=usd,
    )
