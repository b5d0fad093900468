"""The ``transformers`` backend on tiny randomly initialised models built here (no download):
a wav2vec2 CTC model and a Whisper model. Their transcripts are gibberish, but they are real
models decoded by the real library, and their output depends on the input, so batching,
determinism, long-form decoding and the cache can be observed.

Needs the extra: ``pip install "lastmile[transformers]"`` (CPU torch is enough)."""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from lastmile.asr import available_backends, build_backend
from lastmile.asr.faster_whisper import default_model_path
from lastmile.asr.transformers_backend import TransformersBackend
from lastmile.cli import cli
from lastmile.errors import BackendError, ConfigError, FatalBackendError
from lastmile.testing import speech_like, tone, write_corpus, write_pack

RATE = 16000


def build_ctc(folder: Path, *, seed: int = 0) -> Path:
    """A one-layer wav2vec2 CTC model over a 32-symbol character vocabulary."""
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
    )

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4}
    vocab.update({c: 5 + i for i, c in enumerate("abcdefghijklmnopqrstuvwxyz'")})
    (folder / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(
        str(folder / "vocab.json"), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|"
    )
    features = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=RATE, padding_value=0.0, do_normalize=True
    )
    config = Wav2Vec2Config(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        pad_token_id=0,
    )
    with torch.random.fork_rng(devices=[]):  # seeded here only; the global state is restored
        torch.manual_seed(seed)
        model = Wav2Vec2ForCTC(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    features.save_pretrained(folder)
    return folder


def build_whisper(folder: Path, *, seed: int = 0) -> Path:
    """A one-layer English-only Whisper model with tiny.en's tokenizer (from the shipped
    model folder) and tiny.en's special tokens and generation settings."""
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = WhisperTokenizerFast(
        tokenizer_file=str(default_model_path() / "tokenizer.json"), pad_token="<|endoftext|>"
    )
    eot, sot, no_ts = 50256, 50257, 50362
    config = WhisperConfig(
        vocab_size=51864,  # tiny.en: text, special and 1501 timestamp tokens
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        num_mel_bins=80,
        max_source_positions=1500,
        max_target_positions=448,
        decoder_start_token_id=sot,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        init_std=1.0,  # large weights: the output depends on the input
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot,
        eos_token_id=eot,
        pad_token_id=eot,
        bos_token_id=eot,
        is_multilingual=False,
        no_timestamps_token_id=no_ts,
        max_initial_timestamp_index=50,
        max_length=448,
        begin_suppress_tokens=[220, eot],
        suppress_tokens=[],
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=80, sampling_rate=RATE).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def ctc_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_ctc(tmp_path_factory.mktemp("ctc") / "model")


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_whisper(tmp_path_factory.mktemp("whisper") / "model")


def _clips(seed: int) -> list[np.ndarray]:
    """Different sounds and lengths: two pairs of equal length and two odd ones."""
    rng = np.random.default_rng(seed)
    a = speech_like(rng, duration_s=1.0, sample_rate=RATE)
    b = tone(freq_hz=440.0, duration_s=1.0, sample_rate=RATE)
    c = speech_like(rng, duration_s=1.7, sample_rate=RATE)
    d = tone(freq_hz=1200.0, duration_s=0.6, sample_rate=RATE, level_dbfs=-10.0)
    return [a, b, c, d, 0.5 * a, speech_like(rng, duration_s=1.7, sample_rate=RATE)]


def _spec(folder: Path, **params: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"transformers:{folder}" + (f"?{query}" if query else "")


@pytest.mark.timeout(120)
def test_ctc_batches_give_the_transcripts_of_one_at_a_time_and_runs_repeat(ctc_dir: Path):
    clips = _clips(1)
    backend = build_backend(_spec(ctc_dir, batch_size=8))
    assert backend.sample_rate == RATE and backend.kind == "ctc"
    batched = backend.transcribe(clips)
    # a real, input-dependent decode: not empty and not the same for every clip
    assert all(batched) and len(set(batched)) >= 4
    alone = [backend.transcribe([c])[0] for c in clips]
    pairs = build_backend(_spec(ctc_dir, batch_size=2)).transcribe(clips)
    assert batched == alone == pairs
    # a fresh load gives the same transcripts (greedy, no random state)
    again = build_backend(_spec(ctc_dir, batch_size=8)).transcribe(clips)
    assert again == batched
    # the threads setting is restored after decoding; one or two threads, same text
    before = torch.get_num_threads()
    two = build_backend(_spec(ctc_dir, cpu_threads=2)).transcribe(clips)
    assert torch.get_num_threads() == before
    assert two == batched


@pytest.mark.timeout(180)
def test_whisper_batches_give_the_transcripts_of_one_at_a_time_and_runs_repeat(
    whisper_dir: Path,
):
    clips = _clips(2)[:4]
    spec = _spec(whisper_dir, batch_size=4, max_tokens_per_s=10)
    backend = build_backend(spec)
    assert backend.kind == "whisper"
    batched = backend.transcribe(clips)
    assert all(batched) and len(set(batched)) >= 2
    # no special or timestamp token leaks into the text
    assert not any("<|" in t for t in batched)
    alone = [backend.transcribe([c])[0] for c in clips]
    assert batched == alone
    assert build_backend(spec).transcribe(clips) == batched


@pytest.mark.timeout(240)
def test_whisper_decodes_audio_past_30_s(whisper_dir: Path):
    """A 65 s item goes through long-form generation: its transcript changes when only the
    audio after the first 30 s changes, so nothing was cut at 30 s."""
    rng = np.random.default_rng(3)
    head = speech_like(rng, duration_s=30.0, sample_rate=RATE)
    tail_a = speech_like(rng, duration_s=35.0, sample_rate=RATE, level_dbfs=-12.0)
    tail_b = tone(freq_hz=300.0, duration_s=35.0, sample_rate=RATE, level_dbfs=-12.0)
    backend = build_backend(_spec(whisper_dir, max_tokens_per_s=10))
    head_only, long_a, long_b = backend.transcribe(
        [head, np.concatenate([head, tail_a]), np.concatenate([head, tail_b])]
    )
    assert long_a != long_b
    assert head_only not in (long_a, long_b)
    assert not any("<|" in t for t in (long_a, long_b))


def test_fingerprint_follows_model_files_versions_and_decoding(ctc_dir: Path, tmp_path: Path):
    import tokenizers
    import transformers

    copy = Path(shutil.copytree(ctc_dir, tmp_path / "copy"))
    base = TransformersBackend(copy).fingerprint()
    meta = json.loads(base)
    assert meta["torch"] == torch.__version__
    assert meta["transformers"] == transformers.__version__
    assert meta["tokenizers"] == tokenizers.__version__
    # same files elsewhere: same key; batch size and threads do not change a transcript
    assert TransformersBackend(ctc_dir).fingerprint() == base
    assert TransformersBackend(copy, batch_size=1, cpu_threads=3).fingerprint() == base
    # which GPU does not matter, GPU against CPU and the dtype may
    gpu = TransformersBackend(copy, device="cuda:0").fingerprint()
    assert gpu != base
    assert TransformersBackend(copy, device="cuda:1").fingerprint() == gpu
    assert TransformersBackend(copy, dtype="bfloat16").fingerprint() != base
    assert TransformersBackend(copy, cache_salt="v2").fingerprint() != base
    # one changed byte in the weights changes the key, within the same process
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    changed = TransformersBackend(copy).fingerprint()
    assert changed != base
    # so does a tokenizer file
    vocab = copy / "vocab.json"
    vocab.write_text(vocab.read_text() + "\n")
    assert TransformersBackend(copy).fingerprint() not in (changed, base)


@pytest.mark.timeout(240)
def test_a_real_run_decodes_then_takes_everything_from_the_cache(tmp_path: Path):
    model = build_ctc(tmp_path / "model", seed=7)  # its own model: its own cache entries
    rng = np.random.default_rng(5)
    rows = [
        {
            "id": f"u{i}",
            "audio": f"u{i}.wav",
            "samples": speech_like(rng, duration_s=1.0, sample_rate=RATE),
            "text": "a b c",
            "speaker": f"s{i}",
            "accent": "x" if i % 2 else "y",
        }
        for i in range(4)
    ]
    write_corpus(tmp_path / "corpus", rows)
    pack = write_pack(
        tmp_path / "pack.yaml",
        seed=3,
        corpus={"manifest": "corpus/manifest.csv"},
        asr=_spec(model, batch_size=4),
        fairness={"n_bootstrap": 100, "n_permutations": 99},
        conditions=[{"noise": {"type": "pink"}, "snr_db": 10}],
    )
    runner = CliRunner()
    outcomes = []
    for name in ("first", "second"):
        result = runner.invoke(
            cli,
            ["run", str(pack), "--out", str(tmp_path / name), "-j", "1", "--quiet"],
            catch_exceptions=False,
        )
        assert result.exit_code in (0, 1), result.output
        with (tmp_path / name / "items.csv").open() as fh:
            outcomes.append(list(csv.DictReader(fh)))
    first, second = outcomes
    assert len(first) == len(second) == 8
    assert all(r["error"] == "" and r["hypothesis_raw"] for r in first)
    assert {r["cached"] for r in first} == {"false"}
    assert {r["cached"] for r in second} == {"true"}
    assert [r["hypothesis_raw"] for r in first] == [r["hypothesis_raw"] for r in second]


def test_missing_extra_names_the_install_line(ctc_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """Only the import is made to fail (a None entry in sys.modules); the error path under
    test is ours."""
    monkeypatch.setitem(sys.modules, "transformers", None)
    hint = 'pip install "lastmile[transformers]"'
    problem = TransformersBackend.check()
    assert problem is not None and hint in problem and "transformers" in problem
    with pytest.raises(BackendError, match=r"lastmile\[transformers\]"):
        build_backend(_spec(ctc_dir))
    # built without the check (from_spec), the first decode stops the run with the hint
    backend = TransformersBackend(ctc_dir)
    with pytest.raises(FatalBackendError, match=r"lastmile\[transformers\]"):
        backend.transcribe([np.zeros(RATE, dtype=np.float32)])
    # what `lastmile asr list` shows
    info = next(b for b in available_backends() if b.name == "transformers")
    assert not info.usable and hint in info.detail
    listed = CliRunner().invoke(cli, ["asr", "list"], catch_exceptions=False)
    row = next(x for x in listed.output.splitlines() if "transformers" in x and "│" in x)
    assert row.split("│")[2].strip() == "no"


def test_bad_specs_are_refused_with_the_fix(ctc_dir: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="never downloads"):
        build_backend("transformers:facebook/wav2vec2-base-960h")
    with pytest.raises(ConfigError, match="expected a local model folder"):
        build_backend("transformers")
    with pytest.raises(ConfigError, match=r"unknown parameter.*beam_size"):
        build_backend(_spec(ctc_dir, beam_size=5))
    with pytest.raises(ConfigError, match=r"batch_size: expected a whole number"):
        build_backend(_spec(ctc_dir, batch_size=2.5))
    with pytest.raises(ConfigError, match=r"batch_size: expected a whole number in \[1, 1024\]"):
        build_backend(_spec(ctc_dir, batch_size=0))
    with pytest.raises(ConfigError, match="device: expected cpu, cuda or cuda:N"):
        build_backend(_spec(ctc_dir, device="gpu"))
    with pytest.raises(ConfigError, match="dtype: expected one of"):
        build_backend(_spec(ctc_dir, dtype="int8"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no config.json"):
        build_backend(_spec(empty))
    other = Path(shutil.copytree(ctc_dir, tmp_path / "other"))
    cfg = json.loads((other / "config.json").read_text())
    cfg.update(architectures=["BertModel"], model_type="bert")
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="decodes CTC models"):
        build_backend(_spec(other))


def test_a_missing_gpu_stops_the_run_with_one_message(ctc_dir: Path):
    backend = build_backend(_spec(ctc_dir, device="cuda:99"))
    with pytest.raises(FatalBackendError, match="no such CUDA device"):
        backend.transcribe([np.zeros(RATE, dtype=np.float32)])


@pytest.mark.timeout(180)
def test_whisper_language_prompt_and_token_cap(whisper_dir: Path, tmp_path: Path):
    """``language`` reaches a multilingual model's prompt (an English-only model is given
    none), and ``max_tokens_per_s`` bounds the generated tokens (greedy: a prefix)."""
    from transformers import GenerationConfig

    clip = _clips(6)[:1]
    multi = Path(shutil.copytree(whisper_dir, tmp_path / "multi"))
    gen = GenerationConfig.from_pretrained(multi)
    gen.is_multilingual = True
    gen.lang_to_id = {"<|en|>": 50258, "<|de|>": 50260}
    gen.task_to_id = {"translate": 50357, "transcribe": 50358}
    gen.save_pretrained(multi)
    en = build_backend(_spec(multi, language="en", max_tokens_per_s=10)).transcribe(clip)
    de = build_backend(_spec(multi, language="de", max_tokens_per_s=10)).transcribe(clip)
    assert en != de
    english_only = build_backend(_spec(whisper_dir, max_tokens_per_s=10)).transcribe(clip)
    assert (
        build_backend(_spec(whisper_dir, language="de", max_tokens_per_s=10)).transcribe(clip)
        == english_only
    )
    # 1 s of audio: at most 10 x 1 + 16 = 26 tokens against 40 + 16 = 56
    short = build_backend(_spec(whisper_dir, max_tokens_per_s=10)).transcribe(clip)[0]
    longer = build_backend(_spec(whisper_dir, max_tokens_per_s=40)).transcribe(clip)[0]
    assert longer.startswith(short) and len(longer) > len(short)


def test_batches_never_pad_one_item_for_another(ctc_dir: Path, whisper_dir: Path):
    lengths = [16000, 8000, 16000, 16000, 8000, 40 * 16000]
    audios = [np.zeros(n, dtype=np.float32) for n in lengths]
    ctc = TransformersBackend(ctc_dir, batch_size=2)
    assert ctc._groups(audios) == [[0, 2], [3], [1, 4], [5]]
    whisper = TransformersBackend(whisper_dir, batch_size=8, max_tokens_per_s=10)
    # short items share Whisper's 30 s window; equal token caps decode together, and an
    # item past 30 s is decoded alone (long-form)
    assert whisper._groups(audios) == [[0, 2, 3], [1, 4], [5]]


def test_dtype_is_applied_to_the_model(ctc_dir: Path):
    backend = TransformersBackend(ctc_dir, dtype="bfloat16")
    model, _features, _tokenizer = backend._load()
    assert model.dtype == torch.bfloat16 and model.device.type == "cpu"
    assert all(backend.transcribe(_clips(1)[:2]))
