"""Amazon Transcribe's batch API: upload to S3, start a job, poll, read, clean up.

Spec: ``aws-transcribe:s3://BUCKET/PREFIX/?region=us-east-1&language=en-US&concurrency=8``.
Each item is written as a 16-bit WAV to ``s3://BUCKET/PREFIX/<job>.wav``, transcribed by a job
whose transcript goes to ``s3://BUCKET/PREFIX/<job>.json``, read back, and then the audio,
the transcript and the job are deleted (also when the job failed or timed out). The medical
variant (``medical=true``) runs ``StartMedicalTranscriptionJob`` with ``specialty`` and
``type``.

Credentials come only from the standard AWS chain (environment, shared config and
credentials files, SSO, container or instance roles); a spec never holds a key. The IAM
identity needs ``s3:PutObject``, ``s3:GetObject`` and ``s3:DeleteObject`` on the prefix and
``transcribe:Start/Get/DeleteTranscriptionJob`` (the ``Medical`` twins for ``medical=true``).

The backend is I/O-bound: up to ``concurrency`` jobs are in flight from one process (threads).
A failure that would fail every item the same way (refused credentials, no such bucket, an
unknown custom vocabulary, an unreachable endpoint) raises :class:`FatalBackendError` and
stops the run; a job that fails or does not finish within ``max_wait_s`` fails its item only.

This backend was tested against moto's mock of S3 and Transcribe and botocore's stubs, not
against the live service.

:func:`estimate` gives the audio minutes and the cost of a list of items at the published
per-minute prices (``lastmile run PACK --dry-run`` prints it before anything is sent).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np

from lastmile.asr.base import BackendSpec
from lastmile.asr.params import (
    CACHE_SALT_PARAM,
    FLAG,
    TEXT,
    Param,
    int_in,
    number_in,
    with_defaults,
)
from lastmile.asr.remote import Outcome, decode_each, wav_bytes
from lastmile.errors import BackendError, ConfigError, FatalBackendError

__all__ = [
    "MEDICAL_USD_PER_MIN",
    "MIN_BILLED_S",
    "STANDARD_USD_PER_MIN",
    "AWSTranscribeBackend",
    "estimate",
]

INSTALL_HINT = 'pip install "lastmile[aws]"'

# Published prices, Amazon Transcribe batch, US East (N. Virginia), first pricing tier
# (aws.amazon.com/transcribe/pricing, as we read the page in 2024; they differ by region and
# fall with volume, so check the page for your account before relying on an estimate).
STANDARD_USD_PER_MIN = 0.024
MEDICAL_USD_PER_MIN = 0.075
MIN_BILLED_S = 15  # billed per second, with a 15 s minimum per job


def estimate(items_audio_seconds: Iterable[float], *, medical: bool = False) -> tuple[float, float]:
    """(audio minutes, estimated USD) for one job per item of the given lengths (s): each
    job billed per whole second with a :data:`MIN_BILLED_S` minimum, at
    :data:`STANDARD_USD_PER_MIN` or :data:`MEDICAL_USD_PER_MIN`."""
    audio_s = 0.0
    billed_s = 0
    for seconds in items_audio_seconds:
        s = float(seconds)
        if not math.isfinite(s) or s < 0:
            raise ConfigError(f"aws-transcribe: estimate: expected item lengths >= 0 s, got {s}")
        audio_s += s
        billed_s += max(MIN_BILLED_S, math.ceil(s))
    price = MEDICAL_USD_PER_MIN if medical else STANDARD_USD_PER_MIN
    return audio_s / 60.0, billed_s / 60.0 * price


_PARAMS: dict[str, Param] = {
    "region": TEXT,
    "profile": TEXT,
    "language": TEXT,
    "vocabulary": TEXT,
    "medical": FLAG,
    "specialty": TEXT,
    "type": TEXT,
    "concurrency": int_in(1, 250),
    "poll_s": number_in(0.001, 60.0),
    "max_poll_s": number_in(0.001, 600.0),
    "max_wait_s": number_in(0.01, 86_400.0),
    "max_retries": int_in(0, 20),
    "sample_rate": int_in(8000, 48000),
    "cache_salt": CACHE_SALT_PARAM,
}
_DEFAULTS: dict[str, Any] = {
    "language": "en-US",
    "medical": False,
    "specialty": "PRIMARYCARE",
    "type": "DICTATION",
    "concurrency": 8,
    "poll_s": 2.0,
    "max_poll_s": 30.0,
    "max_wait_s": 3600.0,
    "max_retries": 5,
    "sample_rate": 16000,
}
_SECRETS = {
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "access_key",
    "secret_key",
    "secret",
    "session_token",
    "key",
    "token",
}
_SPECIALTIES = ("PRIMARYCARE",)
_TYPES = ("CONVERSATION", "DICTATION")
_FATAL_CODES = {
    "AccessDenied": "access denied",
    "AccessDeniedException": "access denied",
    "AllAccessDisabled": "access to the bucket is disabled",
    "InvalidAccessKeyId": "the access key is not known to AWS",
    "InvalidClientTokenId": "the access key is not known to AWS",
    "UnrecognizedClientException": "the credentials were refused",
    "SignatureDoesNotMatch": "the secret key does not match the access key",
    "InvalidSignatureException": "the secret key does not match the access key",
    "ExpiredToken": "the session token has expired",
    "ExpiredTokenException": "the session token has expired",
    "NoSuchBucket": "no such bucket",
    "PermanentRedirect": "the bucket is in another region",
    "AuthorizationHeaderMalformed": "the bucket is in another region",
    "BadRequestException": "the service refused the job's settings",
}
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}-[A-Z]{2}$")


def _parse_location(location: str) -> tuple[str, str]:
    """``s3://BUCKET/PREFIX`` or ``BUCKET/PREFIX`` → (bucket, prefix ending in ``/``)."""
    text = location.strip()
    if text.startswith("s3://"):
        text = text[len("s3://") :]
    bucket, _, prefix = text.partition("/")
    if not _BUCKET.match(bucket or "") or ".." in bucket:
        raise ConfigError(
            f"aws-transcribe: expected an S3 bucket and prefix for the uploads, e.g. "
            f"aws-transcribe:s3://my-bucket/lastmile/, got {location!r}"
        )
    prefix = prefix.strip("/")
    return bucket, (f"{prefix}/" if prefix else "lastmile/")


def _s3_object(uri: str) -> tuple[str, str] | None:
    """(bucket, key) of an S3 https URL, path or virtual-host style; None otherwise."""
    parts = urlsplit(uri)
    if parts.scheme == "s3":
        return parts.netloc, unquote(parts.path.lstrip("/"))
    host = parts.netloc.split(":")[0]
    if parts.scheme != "https" or not host.endswith(".amazonaws.com"):
        return None
    if host.startswith(("s3.", "s3-")):
        bucket, _, key = parts.path.lstrip("/").partition("/")
        return bucket, unquote(key)
    if ".s3." in host or ".s3-" in host:
        return host.split(".s3", 1)[0], unquote(parts.path.lstrip("/"))
    return None


class AWSTranscribeBackend:
    """``aws-transcribe:s3://BUCKET/PREFIX/?region=R&language=en-US&concurrency=8``.

    Parameters: ``region`` (default: the AWS chain's region), ``profile`` (a named profile of
    the shared config; credentials stay in the chain), ``language`` (a Transcribe language
    code, default en-US), ``vocabulary`` (a custom vocabulary's name), ``medical`` (true:
    Amazon Transcribe Medical, en-US only, with ``specialty`` PRIMARYCARE and ``type``
    DICTATION or CONVERSATION), ``concurrency`` (jobs in flight, default 8; the account's
    quota of concurrent jobs applies), ``poll_s`` (first wait between status checks, doubled
    up to ``max_poll_s``), ``max_wait_s`` (an item fails when its job has not finished by
    then), ``max_retries`` (botocore's retries of throttled and failed calls),
    ``sample_rate`` (of the uploaded WAV, default 16000) and ``cache_salt``.

    The cache key holds the region, the language, the vocabulary, the medical settings and
    the sample rate. Amazon changes its models without a version to pin: set ``cache_salt``
    (e.g. a date) to decode again rather than reuse older transcripts.
    """

    name = "aws-transcribe"
    io_bound = True  # the engine keeps many jobs in flight in one process

    def __init__(self, location: str | None, *, session: Any = None, **params: Any) -> None:
        secrets = {k for k in params if k.lower() in _SECRETS}
        if secrets:
            raise ConfigError(
                f"aws-transcribe: {sorted(secrets)}: credentials never go in a spec (it is "
                "written to run.json and reports); use the standard AWS chain instead: "
                "AWS_PROFILE, `aws configure`, `aws sso login`, or an instance/container role"
            )
        self.bucket, self.prefix = _parse_location(location or "")
        values = with_defaults(self.name, params, _PARAMS, _DEFAULTS)
        if values["medical"]:
            if values["language"] != "en-US":
                raise ConfigError(
                    f"aws-transcribe: language: Transcribe Medical supports en-US only, got "
                    f"{values['language']!r}; drop medical=true or use language=en-US"
                )
            if values["specialty"] not in _SPECIALTIES:
                raise ConfigError(
                    f"aws-transcribe: specialty: expected one of {', '.join(_SPECIALTIES)}, "
                    f"got {values['specialty']!r}"
                )
            if values["type"] not in _TYPES:
                raise ConfigError(
                    f"aws-transcribe: type: expected one of {', '.join(_TYPES)}, "
                    f"got {values['type']!r}"
                )
        elif not _LANGUAGE.match(values["language"]):
            raise ConfigError(
                f"aws-transcribe: language: expected a Transcribe language code such as en-US "
                f"or en-GB, got {values['language']!r}"
            )
        if values["max_poll_s"] < values["poll_s"]:
            raise ConfigError(
                f"aws-transcribe: max_poll_s={values['max_poll_s']:g} is below "
                f"poll_s={values['poll_s']:g}; raise max_poll_s"
            )
        self.params: dict[str, Any] = values
        self.sample_rate = int(values["sample_rate"])
        self.concurrency = int(values["concurrency"])
        self._session = session
        if values["profile"] is not None and session is None:
            problem = _missing_extra()
            if problem is not None:
                raise ConfigError(f"aws-transcribe: {problem}")
            self._boto_session()  # an unknown profile is refused here, not per item
        self.region = values["region"] or self._default_region()
        self._clients: tuple[Any, Any] | None = None
        self._lock = threading.Lock()
        self._item = threading.local()  # the retries of the item decoded on each thread
        # transcripts of items that succeeded in a batch that failed, by audio digest: the
        # engine then retries the batch's items one by one, and those are not sent (and
        # billed) again
        self._held: dict[str, str] = {}

    def _default_region(self) -> str:
        problem = _missing_extra()
        if problem is not None:
            raise ConfigError(f"aws-transcribe: {problem}")
        region = self._boto_session().region_name
        if not region:
            raise ConfigError(
                "aws-transcribe: no AWS region: add region=... to the spec (e.g. "
                "aws-transcribe:s3://bucket/prefix/?region=us-east-1) or set AWS_REGION"
            )
        return str(region)

    def _boto_session(self) -> Any:
        if self._session is None:
            import boto3
            from botocore.exceptions import ProfileNotFound

            try:
                self._session = boto3.session.Session(profile_name=self.params["profile"])
            except ProfileNotFound:
                raise ConfigError(
                    f"aws-transcribe: profile={self.params['profile']}: no such profile in the "
                    "AWS config; list them with `aws configure list-profiles`"
                ) from None
        return self._session

    def __repr__(self) -> str:
        return f"AWSTranscribeBackend('s3://{self.bucket}/{self.prefix}', region={self.region!r})"

    @classmethod
    def check(cls) -> str | None:
        return _missing_extra()

    @classmethod
    def describe(cls) -> str:
        return "Amazon Transcribe batch jobs: aws-transcribe:s3://BUCKET/PREFIX/?region=R"

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> AWSTranscribeBackend:
        return cls(spec.argument, **dict(spec.params))

    def fingerprint(self) -> str:
        keys = ["language", "vocabulary", "medical", "cache_salt"]
        if self.params["medical"]:
            keys += ["specialty", "type"]
        meta = {
            "backend": self.name,
            "region": self.region,
            "sample_rate": self.sample_rate,
            "media_format": "wav/pcm16",
            **{k: self.params[k] for k in keys},
        }
        return json.dumps(meta, sort_keys=True, separators=(",", ":"))

    def estimate(self, items_audio_seconds: Iterable[float]) -> tuple[float, float]:
        """(audio minutes, estimated USD) for these item lengths; see :func:`estimate`."""
        return estimate(items_audio_seconds, medical=self.params["medical"])

    # -- AWS calls -------------------------------------------------------------------------

    def _aws(self) -> tuple[Any, Any]:
        """(s3, transcribe) clients, made once; thread-safe after that."""
        with self._lock:
            if self._clients is None:
                problem = _missing_extra()
                if problem is not None:
                    raise FatalBackendError(f"aws-transcribe: {problem}")
                from botocore.config import Config

                config = Config(
                    region_name=self.region,
                    retries={
                        "mode": "standard",
                        "total_max_attempts": self.params["max_retries"] + 1,
                    },
                    max_pool_connections=max(10, self.concurrency),
                    user_agent_extra="lastmile",
                )
                session = self._boto_session()
                self._clients = (
                    session.client("s3", config=config),
                    session.client("transcribe", config=config),
                )
            return self._clients

    def _call(self, what: str, func: Any, **kwargs: Any) -> Any:
        """One AWS call; errors that would fail every item raise FatalBackendError, others
        BackendError naming the call."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            NoRegionError,
            PartialCredentialsError,
        )

        try:
            result = func(**kwargs)
        except ClientError as exc:
            self._count_retries(exc.response)
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            message = str(error.get("Message", "")) or str(exc)
            if code in _FATAL_CODES:
                raise FatalBackendError(
                    f"aws-transcribe: {what}: {_FATAL_CODES[code]} ({code}: {message}); "
                    f"{_fix(code, self)}"
                ) from None
            raise BackendError(f"aws-transcribe: {what}: {code}: {message}") from None
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise FatalBackendError(
                f"aws-transcribe: {what}: no usable AWS credentials ({exc}); configure the "
                "standard chain: AWS_PROFILE, `aws configure`, `aws sso login`, or a role"
            ) from None
        except (EndpointConnectionError, NoRegionError) as exc:
            raise FatalBackendError(
                f"aws-transcribe: {what}: cannot reach AWS in region {self.region} ({exc}); "
                "check the network and region="
            ) from None
        except BotoCoreError as exc:
            raise BackendError(f"aws-transcribe: {what}: {type(exc).__name__}: {exc}") from None
        self._count_retries(result)
        return result

    def _count_retries(self, response: Any) -> None:
        """Add botocore's retries of one call (throttling, 5xx, dropped connections) to the
        item decoded on this thread."""
        meta = response.get("ResponseMetadata", {}) if isinstance(response, dict) else {}
        self._item.retries = getattr(self._item, "retries", 0) + int(meta.get("RetryAttempts", 0))

    def _one(self, wav: bytes, label: str) -> tuple[str, float]:
        """Upload, start, poll, read, clean up; the transcript and the time it took."""
        s3, transcribe = self._aws()
        t0 = time.perf_counter()
        job = f"lastmile-{uuid.uuid4().hex}"
        audio_key = f"{self.prefix}{job}.wav"
        out_key = f"{self.prefix}{job}.json"
        medical = self.params["medical"]
        leftovers: list[tuple[str, Any, dict[str, Any]]] = []
        failure: BaseException | None = None
        try:
            # deleted even when the upload seems to fail: a dropped or refused attempt may
            # have stored it (deleting a missing key is no error in S3)
            leftovers.append(
                ("delete the upload", s3.delete_object, {"Bucket": self.bucket, "Key": audio_key})
            )
            try:
                self._call(
                    f"{label}: upload s3://{self.bucket}/{audio_key}",
                    s3.put_object,
                    Bucket=self.bucket,
                    Key=audio_key,
                    Body=wav,
                    ContentType="audio/wav",
                )
            except FatalBackendError:
                leftovers.clear()  # refused (access, bucket): nothing was stored
                raise
            leftovers.append(
                ("delete the transcript", s3.delete_object, {"Bucket": self.bucket, "Key": out_key})
            )
            uri = self._start_and_wait(transcribe, job, audio_key, out_key, label, leftovers)
            where = _s3_object(uri)
            if where is None or where[0] != self.bucket:
                raise BackendError(
                    f"aws-transcribe: {label}: job {job} wrote its transcript to {uri}, not to "
                    f"the bucket {self.bucket}"
                )
            if where[1] != out_key:
                leftovers.append(
                    (
                        "delete the transcript",
                        s3.delete_object,
                        {"Bucket": self.bucket, "Key": where[1]},
                    )
                )
            body = self._call(
                f"{label}: read s3://{self.bucket}/{where[1]}",
                s3.get_object,
                Bucket=self.bucket,
                Key=where[1],
            )["Body"].read()
            text = _transcript_text(body, label, medical=medical)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            # the upload, the transcript and the job go, whatever happened; what cannot be
            # deleted is named so that it can be deleted by hand
            problems = []
            for what, func, kwargs in reversed(leftovers):
                try:
                    self._call(f"{label}: {what}", func, **kwargs)
                except BackendError as exc:
                    problems.append(exc)
            fatal = next((p for p in problems if isinstance(p, FatalBackendError)), None)
            if problems:
                before = f" after: {failure}" if failure is not None else ""
                message = (
                    f"aws-transcribe: {label}: cleanup failed{before}; delete by hand: "
                    + "; ".join(str(p) for p in problems)
                )
                if fatal is not None or isinstance(failure, FatalBackendError):
                    raise FatalBackendError(message) from None
                raise BackendError(message) from None
        return text, time.perf_counter() - t0

    def _start_and_wait(
        self,
        transcribe: Any,
        job: str,
        audio_key: str,
        out_key: str,
        label: str,
        leftovers: list[tuple[str, Any, dict[str, Any]]],
    ) -> str:
        """Start the job, wait for it, and return its transcript's URI."""
        common: dict[str, Any] = {
            "LanguageCode": self.params["language"],
            "MediaSampleRateHertz": self.sample_rate,
            "MediaFormat": "wav",
            "Media": {"MediaFileUri": f"s3://{self.bucket}/{audio_key}"},
            "OutputBucketName": self.bucket,
            "OutputKey": out_key,
        }
        if self.params["vocabulary"]:
            common["Settings"] = {"VocabularyName": self.params["vocabulary"]}
        if self.params["medical"]:
            name_field, result_field = "MedicalTranscriptionJobName", "MedicalTranscriptionJob"
            start, get, delete = (
                transcribe.start_medical_transcription_job,
                transcribe.get_medical_transcription_job,
                transcribe.delete_medical_transcription_job,
            )
            common.update(Specialty=self.params["specialty"], Type=self.params["type"])
        else:
            name_field, result_field = "TranscriptionJobName", "TranscriptionJob"
            start, get, delete = (
                transcribe.start_transcription_job,
                transcribe.get_transcription_job,
                transcribe.delete_transcription_job,
            )
        self._call(f"{label}: start job {job}", start, **{name_field: job}, **common)
        leftovers.append(("delete the job", delete, {name_field: job}))
        wait_s = self.params["poll_s"]
        deadline = time.monotonic() + self.params["max_wait_s"]
        while True:
            info = self._call(f"{label}: job {job} status", get, **{name_field: job})
            state = info.get(result_field, {})
            status = state.get("TranscriptionJobStatus")
            if status == "COMPLETED":
                uri = state.get("Transcript", {}).get("TranscriptFileUri")
                if not isinstance(uri, str) or not uri:
                    raise BackendError(
                        f"aws-transcribe: {label}: job {job} completed without a transcript URI"
                    )
                return uri
            if status == "FAILED":
                raise BackendError(
                    f"aws-transcribe: {label}: job {job} failed: "
                    f"{state.get('FailureReason') or 'no reason given'}"
                )
            if status not in ("QUEUED", "IN_PROGRESS"):
                raise BackendError(
                    f"aws-transcribe: {label}: job {job} has an unknown status {status!r}"
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise BackendError(
                    f"aws-transcribe: {label}: job {job} still {status} after "
                    f"max_wait_s={self.params['max_wait_s']:g}; raise max_wait_s or lower "
                    "concurrency (queued jobs wait for the account's concurrency quota)"
                )
            time.sleep(min(wait_s, left))
            wait_s = min(wait_s * 2.0, self.params["max_poll_s"])

    # -- the backend protocol ----------------------------------------------------------------

    def transcribe_detailed(self, batch: Sequence[np.ndarray]) -> list[Outcome]:
        """Every item of ``batch`` as its own job, up to ``concurrency`` in flight: a
        transcript or an error each (one item's failure does not fail the others)."""
        wavs = [wav_bytes(a, self.sample_rate) for a in batch]
        if not wavs:
            return []
        self._aws()  # a missing extra or region fails here, once

        def one(index: int) -> Outcome:
            self._item.retries = 0
            try:
                text, latency = self._one(wavs[index], f"item{index}")
                return Outcome(text, None, latency, self._item.retries)
            except FatalBackendError:
                raise
            except BackendError as exc:
                return Outcome(None, str(exc), None, self._item.retries)

        return decode_each(len(wavs), one, concurrency=self.concurrency, name="aws")

    def transcribe(self, batch: Sequence[np.ndarray]) -> list[str]:
        """One transcript per item; BackendError naming the first failure. The transcripts
        of the batch's other items are held, so that a retry of those items alone returns
        them without a new job."""
        digests = [hashlib.sha256(wav_bytes(a, self.sample_rate)).hexdigest() for a in batch]
        with self._lock:
            held = {d: self._held.pop(d) for d in digests if d in self._held}
        todo = [i for i, d in enumerate(digests) if d not in held]
        outcomes = self.transcribe_detailed([batch[i] for i in todo])
        texts = {digests[i]: o.text for i, o in zip(todo, outcomes, strict=True) if o.error is None}
        failed = [o.error for o in outcomes if o.error is not None]
        if failed:
            with self._lock:
                self._held = {d: t or "" for d, t in texts.items()}
            raise BackendError(failed[0])
        texts.update(held)
        return [texts[d] or "" for d in digests]


def _missing_extra() -> str | None:
    from importlib.util import find_spec

    if find_spec("boto3") is None:
        return f"boto3 is not installed: run `{INSTALL_HINT}`"
    return None


def _fix(code: str, backend: AWSTranscribeBackend) -> str:
    if code == "NoSuchBucket":
        return f"create s3://{backend.bucket} in {backend.region} or fix the spec's bucket"
    if code in ("PermanentRedirect", "AuthorizationHeaderMalformed"):
        return f"set region= to the bucket's region (now {backend.region})"
    if code == "BadRequestException":
        return (
            "check language=, vocabulary= (it must exist in this region) and the medical settings"
        )
    return (
        "check the credentials of the AWS chain and that the identity may use S3 "
        f"(s3://{backend.bucket}/{backend.prefix}*) and Amazon Transcribe"
    )


def _transcript_text(body: bytes, label: str, *, medical: bool) -> str:
    """The text of a Transcribe transcript JSON (``results.transcripts[0].transcript``)."""
    try:
        data = json.loads(body)
        transcripts = data["results"]["transcripts"]
        text = " ".join(t["transcript"] for t in transcripts)
    except (ValueError, KeyError, TypeError) as exc:
        kind = "medical " if medical else ""
        raise BackendError(
            f"aws-transcribe: {label}: the {kind}transcript file is not Transcribe's JSON "
            f"(no results.transcripts[].transcript: {type(exc).__name__}: {exc}); "
            f"got {body[:120]!r}"
        ) from None
    if not isinstance(text, str):
        raise BackendError(f"aws-transcribe: {label}: the transcript is not a string")
    return text.strip()
