"""Talking to Numerai's API: where it is, the credentials, the queries this tool makes, and what a
failure means, in words a user can act on.

Every Numerai call of numerai-sandbox goes through here (`data fetch`'s downloads, `upload`, `uploads`).
`NUMERAI_API_URL` points them all at another GraphQL endpoint — a staging API, a test server — through
numerapi's own `base_api.API_TOURNAMENT_URL`, which numerapi reads at every call; unset, numerapi's default.

numerapi is the client (its `raw_query` sends every query, signed with the API key), with two gaps closed
here: it reports an HTTP failure (a 500, a refused connection, a reply that is not JSON) by logging it and
returning nothing, so its log messages are collected, kept off the terminal, and become the error's text;
and its `model_upload` does not look at the status of the HTTP PUT that carries the pickle, so the upload's
three calls are made here, with the PUT's status checked before Numerai is told the file is there.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator
from urllib.parse import urlparse

ENV_URL = "NUMERAI_API_URL"
CREDENTIALS = ("NUMERAI_PUBLIC_ID", "NUMERAI_SECRET_KEY")
PROBE_SECONDS = 10
PUT_SECONDS = 600
RETRIES = 3  # numerapi retries a 5xx reply; 1 s, then 2 s apart
KEY_HINT = (f"check {CREDENTIALS[0]} and {CREDENTIALS[1]}: an API key of your Numerai account (Account > "
            "API keys) with the scope to upload models")


class NotConfigured(Exception):
    """The caller's set-up is unusable (no credentials, a malformed NUMERAI_API_URL): a usage error."""


class NumeraiError(Exception):
    """Numerai could not be asked, or refused: not the model's fault (exit code 3). The text is Numerai's."""


# ---------------------------------------------------------------- where, and who

def endpoint() -> str:
    """The GraphQL endpoint every call goes to: $NUMERAI_API_URL, else numerapi's own default."""
    url = os.environ.get(ENV_URL, "").strip()
    if not url:
        return _numerapi_default()
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise NotConfigured(f"{ENV_URL}={url!r} is not an http(s) URL of a GraphQL endpoint "
                            "(e.g. http://127.0.0.1:8080/ ; unset it for Numerai's own API)")
    return url


def credentials() -> tuple[str, str]:
    """The API key numerapi signs with, read as numerapi reads it (the environment, or a .env file)."""
    from numerapi import utils

    public_id, secret_key = utils.load_secrets()
    missing = [name for name, value in zip(CREDENTIALS, (public_id, secret_key)) if not value]
    if missing:
        raise NotConfigured(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: Numerai's "
                            f"API needs your API key in {CREDENTIALS[0]} and {CREDENTIALS[1]} (made under "
                            "Account > API keys on Numerai's site, with the scope to upload models)")
    return public_id, secret_key


_DEFAULT: list[str] = []  # numerapi's own endpoint, read once before it is ever changed


def _numerapi_default() -> str:
    if not _DEFAULT:
        from numerapi import base_api

        _DEFAULT.append(base_api.API_TOURNAMENT_URL)
    return _DEFAULT[0]


def probe(url: str) -> None:
    """Fail within seconds, in one sentence, when the endpoint's host cannot be reached (numerapi would
    wait on an unreachable host without a timeout). Skipped when a proxy stands in between."""
    import requests.utils

    if requests.utils.get_environ_proxies(url):
        return
    parsed = urlparse(url)
    host = parsed.hostname or url
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=PROBE_SECONDS).close()
    except OSError as exc:
        where = f"{host}:{port}" if parsed.port else host
        raise NumeraiError(f"{where} is unreachable ({exc.strerror or exc}); is this machine online?") from exc


def client(authorized: bool = False, progress_bars: bool = False):
    """A numerapi client aimed at `endpoint()`, after the probe; with `authorized`, the credentials are
    checked first (a usage error when missing). `progress_bars`: numerapi's, for its downloads."""
    url = endpoint()
    keys = credentials() if authorized else (None, None)
    import numerapi
    from numerapi import base_api

    _numerapi_default()
    base_api.API_TOURNAMENT_URL = url
    probe(url)
    root = logging.getLogger()
    if not root.handlers:  # numerapi's constructor would set up the root logger to print every library's INFO
        root.addHandler(logging.NullHandler())
    with numerapi_messages():
        return numerapi.NumerAPI(*keys, show_progress_bars=progress_bars)


@contextmanager
def numerapi_messages() -> Iterator[list[str]]:
    """numerapi's log messages while the block runs: collected (numerapi logs an HTTP failure instead of
    raising it) and kept off the terminal."""
    found: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found.append(record.getMessage())

    logger = logging.getLogger("numerapi")
    handler = Collect(logging.WARNING)
    before = logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    try:
        yield found
    finally:
        logger.removeHandler(handler)
        logger.propagate = before[0]
        logger.setLevel(before[1])


# ---------------------------------------------------------------- what Numerai answers

PYTHON_IN_NAME = re.compile(r"python\s*(\d+\.\d+)", re.I)
PYTHON_IN_IMAGE = re.compile(r"py_?(\d+)_(\d+)")


@dataclass(frozen=True)
class Model:
    id: str
    name: str


@dataclass(frozen=True)
class DockerImage:
    """One image Numerai runs uploaded pickles in: "Python 3.11" (numerai_predict_py_3_11:<tag>)."""

    id: str
    name: str
    image: str | None = None
    default: bool = False
    deprecated: bool = False
    experimental: bool = False

    @property
    def python(self) -> str | None:
        """The Python version it runs, from its name ("Python 3.11") or else its image's tag."""
        found = PYTHON_IN_NAME.search(self.name or "")
        if found:
            return found.group(1)
        found = PYTHON_IN_IMAGE.search(self.image or "")
        return f"{found.group(1)}.{found.group(2)}" if found else None


@dataclass(frozen=True)
class DataVersion:
    id: str
    name: str
    default: bool = False


@dataclass(frozen=True)
class StatusChange:
    status: str | None
    description: str | None
    at: str | None


@dataclass(frozen=True)
class Trigger:
    """One run of an uploaded pickle on Numerai (a round's trigger), with each status it went through."""

    id: str | None
    status: str | None
    statuses: tuple[StatusChange, ...] = ()


@dataclass(frozen=True)
class PickleUpload:
    """A model's latest uploaded pickle, as Numerai describes it."""

    id: str | None
    filename: str | None
    uploaded_at: str | None
    docker_image: str | None  # the image's name: "Python 3.12"
    data_version: str | None
    validation_status: str | None
    trigger_status: str | None
    triggers: tuple[Trigger, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "filename": self.filename, "uploaded_at": self.uploaded_at,
                "docker_image": self.docker_image, "data_version": self.data_version,
                "validation_status": self.validation_status, "trigger_status": self.trigger_status,
                "triggers": [{"id": t.id, "status": t.status,
                              "statuses": [{"status": s.status, "description": s.description, "at": s.at}
                                           for s in t.statuses]} for t in self.triggers]}


@dataclass(frozen=True)
class Sent:
    """An upload Numerai accepted: its id, and the file name Numerai keeps it under."""

    id: str
    filename: str


# ---------------------------------------------------------------- the queries

IMAGE_FIELDS = "id name image default deprecated experimental"
IMAGES = f"""query {{
  offered: computePickleDockerImages {{ {IMAGE_FIELDS} }}
  withDeprecated: computePickleDockerImages(deprecated: true) {{ {IMAGE_FIELDS} }}
}}"""
DATA_VERSIONS = "query { computePickleDataVersions { id name default } }"
MODELS = "query { account { models { id name tournament } } }"
PICKLE_UPLOADS = """query { account { models { id name tournament computePickleUpload {
  id filename insertedAt dockerImageName dataVersion validationStatus triggerStatus
  triggers { id status statuses { status description insertedAt } }
} } } }"""
# The upload's two GraphQL calls, with the variable types numerapi's model_upload declares.
UPLOAD_AUTH = """query($filename: String!, $modelId: String) {
  computePickleUploadAuth(filename: $filename, modelId: $modelId) { filename url }
}"""
CREATE_UPLOAD = """mutation($filename: String!, $tournament: Int!, $modelId: String, $dataVersionId: String,
         $dockerImageId: String) {
  createComputePickleUpload(filename: $filename, tournament: $tournament, modelId: $modelId,
                            dataVersionId: $dataVersionId, dockerImageId: $dockerImageId) { id }
}"""


class Numerai:
    """The account's side of Numerai's API, through one numerapi client."""

    def __init__(self, api):
        self.api = api

    @classmethod
    def connect(cls) -> "Numerai":
        """Credentials checked (NotConfigured), endpoint probed (NumeraiError)."""
        return cls(client(authorized=True))

    @property
    def tournament(self) -> int:
        return self.api.tournament_id

    def query(self, text: str, variables: dict | None = None) -> dict[str, Any]:
        """One signed GraphQL call; its `data`, or NumeraiError with what Numerai (or the network) said."""
        with numerapi_messages() as said:
            try:
                result = self.api.raw_query(text, variables, authorization=True, retries=RETRIES, delay=1,
                                            backoff=2)
            except ValueError as exc:  # numerapi raises a GraphQL error's message
                raise NumeraiError(answer(str(exc) or "an error without a message")) from None
        data = result.get("data") if isinstance(result, dict) else None
        if not isinstance(data, dict):
            raise NumeraiError(failure(said))
        return data

    def models(self) -> list[Model]:
        """The account's models in this tournament (numerapi's tournament: Numerai's main one)."""
        return [Model(str(m["id"]), m["name"]) for m in self._account_models(MODELS)]

    def docker_images(self) -> list[DockerImage]:
        """Every image Numerai lists for uploads; one listed only with the deprecated ones counts as deprecated."""
        data = self.query(IMAGES)
        offered = {str(i["id"]) for i in data.get("offered") or [] if i}
        images: dict[str, DockerImage] = {}
        for item in [*(data.get("offered") or []), *(data.get("withDeprecated") or [])]:
            if item and str(item["id"]) not in images:
                images[str(item["id"])] = DockerImage(
                    str(item["id"]), item.get("name") or "", item.get("image"), bool(item.get("default")),
                    bool(item.get("deprecated")) or str(item["id"]) not in offered, bool(item.get("experimental")))
        return list(images.values())

    def data_versions(self) -> list[DataVersion]:
        """The data versions an upload may name (Numerai's current ones)."""
        items = self.query(DATA_VERSIONS).get("computePickleDataVersions") or []
        return [DataVersion(str(i["id"]), i.get("name") or "", bool(i.get("default"))) for i in items if i]

    def pickle_uploads(self) -> list[tuple[Model, PickleUpload | None]]:
        """Each model with the latest pickle uploaded for it (None: none yet)."""
        out = []
        for item in self._account_models(PICKLE_UPLOADS):
            found = item.get("computePickleUpload")
            out.append((Model(str(item["id"]), item["name"]), read_upload(found) if found else None))
        return out

    def upload(self, content: bytes, filename: str, model_id: str, data_version_id: str | None,
               image_id: str) -> Sent:
        """Numerai's upload in its three calls: where to put the file, the PUT of its bytes (checked:
        a refused PUT is an error, and Numerai is then never told of the file), then the upload itself."""
        import requests

        auth = self.query(UPLOAD_AUTH, {"filename": filename, "modelId": model_id}).get("computePickleUploadAuth")
        if not auth or not auth.get("url"):
            raise NumeraiError("Numerai gave no address to upload the pickle to")
        try:
            response = requests.put(auth["url"], data=content, timeout=PUT_SECONDS)
        except requests.RequestException as exc:
            raise NumeraiError(f"the pickle could not be sent to Numerai's storage ({first_line(exc)})") from None
        if not response.ok:
            body = " ".join(re.sub(r"<[^>]+>", " ", response.text or "").split())[:300]
            raise NumeraiError(f"Numerai's storage refused the pickle: HTTP {response.status_code} "
                               f"{response.reason or ''}".rstrip() + (f" ({body})" if body else "")
                               + "; Numerai was not told of it: upload again (the address it gives lasts a "
                               "short while)")
        stored = auth.get("filename") or filename
        created = self.query(CREATE_UPLOAD, {"filename": stored, "tournament": self.tournament, "modelId": model_id,
                                             "dataVersionId": data_version_id, "dockerImageId": image_id})
        upload_id = (created.get("createComputePickleUpload") or {}).get("id")
        if not upload_id:
            raise NumeraiError("Numerai did not confirm the upload (no upload id in its answer)")
        return Sent(str(upload_id), stored)

    def _account_models(self, text: str) -> list[dict[str, Any]]:
        account = self.query(text).get("account")
        if not isinstance(account, dict):
            raise NumeraiError(f"Numerai returned no account for this API key; {KEY_HINT}")
        return [m for m in account.get("models") or [] if m and m.get("tournament", self.tournament) == self.tournament]


def read_upload(item: dict[str, Any]) -> PickleUpload:
    triggers = tuple(Trigger(t.get("id"), t.get("status"),
                             tuple(StatusChange(s.get("status"), s.get("description"), s.get("insertedAt"))
                                   for s in t.get("statuses") or [] if s))
                     for t in item.get("triggers") or [] if t)
    return PickleUpload(item.get("id"), item.get("filename"), item.get("insertedAt"), item.get("dockerImageName"),
                        item.get("dataVersion"), item.get("validationStatus"), item.get("triggerStatus"), triggers)


# ---------------------------------------------------------------- errors in words

AUTH_WORDS = ("auth", "token", "api key", "credential", "permission", "scope", "session", "login", "forbidden",
              "unauthori")


def answer(message: str) -> str:
    """A GraphQL error: Numerai's own message, and what to check when it is about the API key."""
    text = f"Numerai answered: {message.strip()}"
    return text + (f" ({KEY_HINT})" if any(word in message.lower() for word in AUTH_WORDS) else "")


def failure(said: list[str]) -> str:
    """No usable answer: what numerapi logged (the HTTP status, the connection error), first line each."""
    messages = [first_line(m) for m in said if m.strip()]
    if not messages:
        return "Numerai's API sent no usable answer (an empty reply)"
    text = "; ".join(dict.fromkeys(messages))
    hint = f" ({KEY_HINT})" if re.search(r"\b40[13]\b", text) else ""
    return f"Numerai's API could not be used: {text}{hint}"


def first_line(value: object, limit: int = 300) -> str:
    text = str(value).strip()
    line = text.splitlines()[0] if text else type(value).__name__
    return line if len(line) <= limit else line[:limit - 1] + "…"
