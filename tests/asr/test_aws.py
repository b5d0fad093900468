"""The ``aws-transcribe`` backend against moto's mock of S3 and Amazon Transcribe.

Not the live service: moto keeps real S3 objects in memory and walks each job through
QUEUED, IN_PROGRESS and COMPLETED on successive status calls, but it transcribes nothing and
writes no transcript file. The tests therefore play that one part of the service themselves:
when a job is reported COMPLETED, a hook on the client's events reads the WAV that our
backend uploaded (from moto's S3) and writes a transcript JSON in Transcribe's format where
the job says it is, with text that describes the uploaded audio ("n16000 r16000": its frames
and sample rate). That canned transcript is what lets us test our own logic: the upload, the
job's settings, polling with backoff and its bound, reading the transcript, and deleting the
upload, the transcript and the job, also on failure. Faults are injected the same way.
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from moto import mock_aws

from lastmile.asr import available_backends, build_backend
from lastmile.asr.aws_transcribe import (
    MEDICAL_USD_PER_MIN,
    STANDARD_USD_PER_MIN,
    AWSTranscribeBackend,
    estimate,
)
from lastmile.cli import cli
from lastmile.errors import BackendError, ConfigError, FatalBackendError
from lastmile.run import RunOptions, run_pack
from lastmile.testing import speech_like, write_corpus, write_pack

REGION = "us-east-1"
BUCKET = "lastmile-test"
RATE = 16000


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Fake credentials for moto; no shared config or instance metadata is consulted."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


class FakeService:
    """The service's part that moto leaves out (see the module docstring), a record of the
    calls our backend made, and injected faults."""

    def __init__(self, session: boto3.session.Session) -> None:
        self.session = session
        self.s3 = boto3.client("s3", region_name=REGION)  # moto's S3, seen from outside
        self.calls: Counter[str] = Counter()
        self.params: dict[str, list[dict[str, Any]]] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.fail_frames: set[int] = set()  # jobs over audio of these lengths fail
        self.never_finish = False
        self.refuse: dict[str, str] = {}  # operation -> error code answered
        self.slow_down = 0  # S3 uploads answered 503 SlowDown (botocore retries them)
        # a job reports done only once a second job has started (or 2 s passed), as real
        # jobs take seconds: a backend that runs jobs together then always shows two in
        # flight, however the threads happen to be scheduled; one that runs them one at a
        # time waits out the 2 s and shows one
        self.overlap_wait_s = 2.0
        self._first_start: float | None = None
        self._lock = threading.Lock()
        events = session.events
        events.register("provide-client-params.*.*", self._record)
        events.register("before-call.*.*", self._refuse)
        events.register_first("before-send.s3.PutObject", self._throttle)
        for op in ("GetTranscriptionJob", "GetMedicalTranscriptionJob"):
            events.register(f"after-call.transcribe.{op}", self._complete)
        for op in ("StartTranscriptionJob", "StartMedicalTranscriptionJob"):
            events.register(f"after-call.transcribe.{op}", self._started)
        for op in ("DeleteTranscriptionJob", "DeleteMedicalTranscriptionJob"):
            events.register(f"after-call.transcribe.{op}", self._deleted)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1
            self.params.setdefault(model.name, []).append(dict(params))

    def _refuse(self, model: Any, **_: Any) -> Any:
        code = self.refuse.get(model.name)
        if code is None:
            return None
        from botocore.awsrequest import AWSResponse

        response = AWSResponse("https://example.invalid", 403, {}, None)
        return response, {"Error": {"Code": code, "Message": f"{code} (injected)"}}

    def _throttle(self, **_: Any) -> Any:
        with self._lock:
            if self.slow_down <= 0:
                return None
            self.slow_down -= 1
        from botocore.awsrequest import AWSResponse

        class Raw:
            def stream(self, **_: Any):
                yield b"<Error><Code>SlowDown</Code><Message>slow down (injected)</Message></Error>"

        return AWSResponse("https://example.invalid", 503, {}, Raw())

    def _started(self, parsed: dict[str, Any], **_: Any) -> None:
        with self._lock:
            if self._first_start is None:
                self._first_start = time.monotonic()
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _deleted(self, **_: Any) -> None:
        with self._lock:
            self.in_flight -= 1

    def _complete(self, parsed: dict[str, Any], **_: Any) -> None:
        job = parsed.get("TranscriptionJob") or parsed.get("MedicalTranscriptionJob")
        if not job:
            return
        if self.never_finish:
            job["TranscriptionJobStatus"] = "IN_PROGRESS"
            job.pop("Transcript", None)
            return
        if job["TranscriptionJobStatus"] != "COMPLETED":
            return
        with self._lock:
            alone = (
                self.max_in_flight < 2
                and self.calls["StartTranscriptionJob"] + self.calls["StartMedicalTranscriptionJob"]
                > 1
            )
            waited = time.monotonic() - (self._first_start or time.monotonic())
        if alone and waited < self.overlap_wait_s:
            job["TranscriptionJobStatus"] = "IN_PROGRESS"
            job.pop("Transcript", None)
            return
        bucket, _, key = job["Media"]["MediaFileUri"][len("s3://") :].partition("/")
        wav = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        info = sf.info(io.BytesIO(wav))
        if info.frames in self.fail_frames:
            job["TranscriptionJobStatus"] = "FAILED"
            job["FailureReason"] = "The media file is too short (injected)"
            job.pop("Transcript", None)
            return
        uri = job["Transcript"]["TranscriptFileUri"]
        out_bucket, _, out_key = uri.split(".amazonaws.com/", 1)[1].partition("/")
        text = f"n{info.frames} r{info.samplerate}"
        body = {"jobName": "x", "results": {"transcripts": [{"transcript": text}], "items": []}}
        self.s3.put_object(Bucket=out_bucket, Key=out_key, Body=json.dumps(body).encode())

    def leftovers(self) -> list[str]:
        """Objects still in the bucket and jobs still known to the service."""
        listed = self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
        transcribe = boto3.client("transcribe", region_name=REGION)
        jobs = transcribe.list_transcription_jobs()["TranscriptionJobSummaries"]
        medical = transcribe.list_medical_transcription_jobs()["MedicalTranscriptionJobSummaries"]
        return (
            [o["Key"] for o in listed]
            + [j["TranscriptionJobName"] for j in jobs]
            + [j["MedicalTranscriptionJobName"] for j in medical]
        )


@pytest.fixture
def service():
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        yield FakeService(boto3.session.Session(region_name=REGION))


def _backend(service: FakeService, **params: Any) -> AWSTranscribeBackend:
    params.setdefault("poll_s", 0.001)
    params.setdefault("max_poll_s", 0.004)
    return AWSTranscribeBackend(f"s3://{BUCKET}/runs/a", session=service.session, **params)


def _clips(*seconds: float) -> list[np.ndarray]:
    rng = np.random.default_rng(4)
    return [speech_like(rng, duration_s=s, sample_rate=RATE) for s in seconds]


@pytest.mark.timeout(60)
def test_each_item_is_uploaded_transcribed_read_and_cleaned_up(service: FakeService):
    lengths = (0.5, 1.0, 1.25, 0.75, 2.0, 1.5)
    backend = _backend(service, concurrency=4, language="en-GB")
    outcomes = backend.transcribe_detailed(_clips(*lengths))
    assert [o.text for o in outcomes] == [f"n{int(s * RATE)} r{RATE}" for s in lengths]
    assert all(o.error is None and o.latency_s and o.latency_s > 0 for o in outcomes)
    # the job's settings, in the bucket and prefix of the spec
    starts = service.params["StartTranscriptionJob"]
    assert len(starts) == len(lengths)
    for p in starts:
        job = p["TranscriptionJobName"]
        assert p["LanguageCode"] == "en-GB" and p["MediaSampleRateHertz"] == RATE
        assert p["MediaFormat"] == "wav" and "Settings" not in p
        assert p["Media"]["MediaFileUri"] == f"s3://{BUCKET}/runs/a/{job}.wav"
        assert (p["OutputBucketName"], p["OutputKey"]) == (BUCKET, f"runs/a/{job}.json")
    # polled until done (moto needs two status calls), jobs in flight together
    assert service.calls["GetTranscriptionJob"] >= 2 * len(lengths)
    assert service.max_in_flight >= 2
    # upload, transcript and job deleted: nothing left behind
    assert service.calls["DeleteTranscriptionJob"] == len(lengths)
    assert service.leftovers() == []


@pytest.mark.timeout(60)
def test_custom_vocabulary_and_the_medical_variant(service: FakeService):
    transcribe = boto3.client("transcribe", region_name=REGION)
    transcribe.create_vocabulary(VocabularyName="ward", LanguageCode="en-US", Phrases=["MRI"])
    texts = _backend(service, vocabulary="ward").transcribe(_clips(1.0))
    assert texts == [f"n{RATE} r{RATE}"]
    assert service.params["StartTranscriptionJob"][0]["Settings"] == {"VocabularyName": "ward"}

    transcribe.create_medical_vocabulary(
        VocabularyName="meds", LanguageCode="en-US", VocabularyFileUri=f"s3://{BUCKET}/v.txt"
    )
    medical = _backend(service, medical=True, type="CONVERSATION", vocabulary="meds")
    assert medical.transcribe(_clips(0.5, 1.0)) == [f"n{RATE // 2} r{RATE}", f"n{RATE} r{RATE}"]
    starts = service.params["StartMedicalTranscriptionJob"]
    assert [(p["Specialty"], p["Type"], p["LanguageCode"]) for p in starts] == [
        ("PRIMARYCARE", "CONVERSATION", "en-US")
    ] * 2
    assert starts[0]["Settings"] == {"VocabularyName": "meds"}
    # moto puts a medical transcript under medical/, not our key: read and deleted there
    assert service.calls["DeleteMedicalTranscriptionJob"] == 2
    assert service.leftovers() == []


@pytest.mark.timeout(60)
def test_a_failed_job_fails_its_item_only_and_is_cleaned_up(service: FakeService):
    service.fail_frames = {int(0.75 * RATE)}
    outcomes = _backend(service, concurrency=3).transcribe_detailed(_clips(0.5, 0.75, 1.0))
    assert [o.text for o in outcomes] == [f"n{RATE // 2} r{RATE}", None, f"n{RATE} r{RATE}"]
    assert "item1" in outcomes[1].error and "too short (injected)" in outcomes[1].error
    assert service.leftovers() == []
    # transcribe(): the failure is raised, and when the engine then retries the batch's items
    # one by one, those that succeeded are not sent (and billed) again
    backend = _backend(service, concurrency=3)
    clips = _clips(0.5, 0.75, 1.0)
    with pytest.raises(BackendError, match="too short"):
        backend.transcribe(clips)
    started = service.calls["StartTranscriptionJob"]
    assert backend.transcribe([clips[2]]) == [f"n{RATE} r{RATE}"]
    assert backend.transcribe([clips[0]]) == [f"n{RATE // 2} r{RATE}"]
    assert service.calls["StartTranscriptionJob"] == started
    with pytest.raises(BackendError, match="too short"):
        backend.transcribe([clips[1]])
    assert service.calls["StartTranscriptionJob"] == started + 1
    # held once: the same audio later is a new job
    backend.transcribe([clips[0]])
    assert service.calls["StartTranscriptionJob"] == started + 2
    assert service.leftovers() == []


@pytest.mark.timeout(60)
def test_throttled_calls_are_retried_and_counted(service: FakeService):
    service.slow_down = 2
    (outcome,) = _backend(service, max_retries=3).transcribe_detailed(_clips(0.5))
    assert outcome.text == f"n{RATE // 2} r{RATE}" and outcome.retries == 2
    service.slow_down = 5
    (outcome,) = _backend(service, max_retries=1).transcribe_detailed(_clips(0.5))
    assert outcome.text is None and "SlowDown" in outcome.error and outcome.retries == 1
    assert service.leftovers() == []


@pytest.mark.timeout(60)
def test_polling_backs_off_and_gives_up_at_max_wait(service: FakeService):
    service.never_finish = True
    backend = _backend(service, poll_s=0.01, max_poll_s=0.04, max_wait_s=0.3)
    t0 = time.perf_counter()
    (outcome,) = backend.transcribe_detailed(_clips(0.5))
    elapsed = time.perf_counter() - t0
    assert outcome.text is None and "max_wait_s=0.3" in outcome.error
    assert 0.3 <= elapsed < 3.0
    # waits 0.01, 0.02, 0.04, 0.04, ... : about 9 status calls in 0.3 s, not 30
    assert 4 <= service.calls["GetTranscriptionJob"] <= 12
    assert service.leftovers() == []  # the unfinished job and the upload were deleted


@pytest.mark.timeout(60)
def test_refusals_stop_the_run_with_one_message(service: FakeService):
    with pytest.raises(FatalBackendError, match=r"^aws-transcribe: item0: upload .*NoSuchBucket"):
        AWSTranscribeBackend("s3://no-such-bucket-here/x", session=service.session).transcribe(
            _clips(0.5)
        )
    service.refuse = {"PutObject": "AccessDenied"}
    with pytest.raises(FatalBackendError, match=r"^aws-transcribe: item\d: upload .*access denied"):
        _backend(service, concurrency=4).transcribe_detailed(_clips(0.5, 0.5, 0.5))
    service.refuse = {"StartTranscriptionJob": "AccessDeniedException"}
    with pytest.raises(FatalBackendError, match="AccessDeniedException"):
        _backend(service).transcribe(_clips(0.5))
    assert service.leftovers() == []  # the upload made before the refusal was deleted
    service.refuse = {}
    with pytest.raises(FatalBackendError, match="vocabulary couldn't be found"):
        _backend(service, vocabulary="nope").transcribe(_clips(0.5))
    # a refused delete would leave customer audio behind: that stops the run too
    service.refuse = {"DeleteObject": "AccessDenied"}
    with pytest.raises(FatalBackendError, match="cleanup failed.*delete by hand"):
        _backend(service).transcribe(_clips(0.5))


def test_no_credentials_is_fatal_and_names_the_chain(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    backend = AWSTranscribeBackend(f"s3://{BUCKET}/x", region=REGION)
    with pytest.raises(FatalBackendError, match="no usable AWS credentials.*AWS_PROFILE"):
        backend.transcribe(_clips(0.5))


def test_spec_is_checked_and_credentials_are_refused(monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(ConfigError, match="credentials never go in a spec"):
        build_backend(f"aws-transcribe:s3://{BUCKET}/x?aws_secret_access_key=abc")
    with pytest.raises(ConfigError, match=r"unknown parameter.*beam"):
        build_backend(f"aws-transcribe:s3://{BUCKET}/x?beam=2")
    with pytest.raises(ConfigError, match="expected an S3 bucket"):
        build_backend("aws-transcribe:s3://A_Bucket/x")
    with pytest.raises(ConfigError, match="expected an S3 bucket"):
        build_backend("aws-transcribe")
    with pytest.raises(ConfigError, match="language: expected a Transcribe language code"):
        build_backend(f"aws-transcribe:s3://{BUCKET}/x?language=english")
    with pytest.raises(ConfigError, match="Medical supports en-US only"):
        build_backend(f"aws-transcribe:s3://{BUCKET}/x?medical=true&language=en-GB")
    with pytest.raises(ConfigError, match="type: expected one of CONVERSATION, DICTATION"):
        build_backend(f"aws-transcribe:s3://{BUCKET}/x?medical=true&type=NOTES")
    with pytest.raises(ConfigError, match="medical: expected true or false"):
        build_backend(f"aws-transcribe:s3://{BUCKET}/x?medical=maybe")
    with pytest.raises(ConfigError, match=r"concurrency: expected a whole number in \[1, 250\]"):
        build_backend(f"aws-transcribe:s3://{BUCKET}/x?concurrency=0")
    with pytest.raises(ConfigError, match="profile=nobody: no such profile"):
        build_backend(f"aws-transcribe:s3://{BUCKET}/x?profile=nobody&region={REGION}")
    backend = build_backend(f"aws-transcribe:{BUCKET}?region=eu-west-1")
    assert (backend.bucket, backend.prefix, backend.region) == (BUCKET, "lastmile/", "eu-west-1")
    assert backend.io_bound and backend.sample_rate == RATE
    # the region comes from the AWS chain when the spec has none; none at all is an error
    assert build_backend(f"aws-transcribe:s3://{BUCKET}/x").region == REGION
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    with pytest.raises(ConfigError, match="no AWS region: add region="):
        build_backend(f"aws-transcribe:s3://{BUCKET}/x")


def test_fingerprint_holds_what_changes_a_transcript():
    def fp(**params: Any) -> str:
        return AWSTranscribeBackend(f"s3://{BUCKET}/x", **params).fingerprint()

    base = fp()
    assert json.loads(base)["region"] == REGION and BUCKET not in base
    # where the audio is staged, how many jobs run and how often they are polled: same key
    assert AWSTranscribeBackend("s3://other-bucket/y").fingerprint() == base
    assert fp(concurrency=32, poll_s=5, max_wait_s=60, max_retries=1) == base
    for changed in (
        {"region": "eu-west-1"},
        {"language": "en-GB"},
        {"vocabulary": "ward"},
        {"medical": True},
        {"sample_rate": 8000},
        {"cache_salt": "2026-12"},
    ):
        assert fp(**changed) != base, changed
    assert fp(medical=True, type="CONVERSATION") != fp(medical=True)


def test_estimate_uses_the_published_prices_and_the_15_s_minimum():
    minutes, usd = estimate([3.0, 20.0, 61.2])
    assert minutes == pytest.approx(84.2 / 60)
    # billed: 15 s (minimum) + 20 s + 62 s (whole seconds) = 97 s
    assert usd == pytest.approx(97 / 60 * STANDARD_USD_PER_MIN)
    assert estimate([3.0, 20.0, 61.2], medical=True)[1] == pytest.approx(
        97 / 60 * MEDICAL_USD_PER_MIN
    )
    assert estimate([]) == (0.0, 0.0)
    with pytest.raises(ConfigError, match="item lengths >= 0"):
        estimate([1.0, -2.0])
    medical = AWSTranscribeBackend(f"s3://{BUCKET}/x", medical=True)
    assert medical.estimate([60.0]) == pytest.approx((1.0, MEDICAL_USD_PER_MIN))


def _pack(tmp_path: Path, *, n: int = 4, seconds: float = 1.5) -> Path:
    rng = np.random.default_rng(9)
    rows = [
        {
            "id": f"u{i}",
            "audio": f"u{i}.wav",
            "samples": speech_like(rng, duration_s=seconds, sample_rate=RATE),
            "text": "one two three",
            "speaker": f"s{i}",
            "accent": "x" if i % 2 else "y",
        }
        for i in range(n)
    ]
    write_corpus(tmp_path / "corpus", rows)
    return write_pack(
        tmp_path / "pack.yaml",
        seed=2,
        corpus={"manifest": "corpus/manifest.csv"},
        fairness={"n_bootstrap": 100, "n_permutations": 99},
        conditions=[{"noise": {"type": "pink"}, "snr_db": 10}],
    )


def test_dry_run_prints_minutes_and_cost_and_sends_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    pack = _pack(tmp_path)
    # every AWS call would go to a closed port and fail the command: nothing may be sent
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    spec = f"aws-transcribe:s3://{BUCKET}/x?region={REGION}"
    out = tmp_path / "run"
    args = ["run", str(pack), "--asr", spec, "--dry-run", "--out", str(out)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # 4 utterances x (clean + pink) = 8 items of 1.5 s: 0.2 min; billed 8 x 15 s = 2 min
    assert "8 items, 0 in the transcript cache, 8 to send" in result.output
    assert "0.20 min (12.0 s)" in result.output
    assert f"${2 * STANDARD_USD_PER_MIN:.2f}" in result.output
    assert "Nothing was sent" in result.output
    assert not out.exists()
    as_json = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    data = json.loads(as_json.output)
    assert data["items"] == data["to_send"] == 8
    assert data["estimated_usd"] == pytest.approx(2 * STANDARD_USD_PER_MIN)
    # a local backend: minutes, no price
    local = CliRunner().invoke(
        cli, ["run", str(pack), "--asr", "pocketsphinx", "--dry-run"], catch_exceptions=False
    )
    assert local.exit_code == 0 and "no price list for this backend" in local.output


@pytest.mark.timeout(120)
def test_a_run_through_the_engine_leaves_nothing_behind(service: FakeService, tmp_path: Path):
    pack = _pack(tmp_path, n=2, seconds=1.0)
    backend = _backend(service, concurrency=4)
    result = run_pack(
        pack, RunOptions(out=tmp_path / "run", workers=1, use_cache=False), backend=backend
    )
    assert result.n_items == 4 and result.n_failed == 0
    items = (tmp_path / "run" / "items.csv").read_text()
    assert items.count(f"n{RATE} r{RATE}") >= 4
    assert service.calls["StartTranscriptionJob"] == 4
    assert service.max_in_flight >= 2  # the engine keeps several jobs in flight
    assert service.leftovers() == []


def test_missing_extra_names_the_install_line(monkeypatch: pytest.MonkeyPatch):
    """Only the import is made to fail (a None entry in sys.modules); the error path under
    test is ours."""
    monkeypatch.setitem(sys.modules, "boto3", None)
    problem = AWSTranscribeBackend.check()
    assert problem is not None and 'pip install "lastmile[aws]"' in problem
    with pytest.raises(BackendError, match=r"lastmile\[aws\]"):
        build_backend(f"aws-transcribe:s3://{BUCKET}/x?region={REGION}")
    info = next(b for b in available_backends() if b.name == "aws-transcribe")
    assert not info.usable and "lastmile[aws]" in info.detail
