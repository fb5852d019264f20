"""A local Numerai API for the tests: a real HTTP server on 127.0.0.1 that executes GraphQL.

numerapi (and so numerai-sandbox) is pointed at it through NUMERAI_API_URL and talks to it over real
sockets, exactly as it talks to Numerai: nothing inside numerapi is replaced. The server is the stdlib's
http.server (no framework needed for three verbs), and the GraphQL is graphql-core's executor running the
queries against a schema that copies the part of Numerai's schema the tool uses (types and field names from
Numerai's published schema; argument types as numerapi declares its variables, since numerapi's queries are
the ones Numerai accepts). So a query naming a field Numerai does not have fails here as it would there, and
answers have GraphQL's exact shape: `{"data": ...}`, or `{"errors": [{"message": ...}], "data": ...}`.

What it records: every request (verb, path, GraphQL query and variables, Authorization header), the
mutation variables, and the bytes of every PUT. What it can be told to do: refuse PUTs (`put_status =
403`), answer every POST with an HTTP error (`http_status = 500`), answer GraphQL with an error
(`graphql_error = "..."`), reject an API key (any key but its own is refused, with `auth_message`).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from graphql import GraphQLError, build_schema, graphql_sync

SCHEMA = build_schema('''
type Query {
  account: Account
  computePickleDockerImages(deprecated: Boolean = false): [ComputePickleDockerImage]
  computePickleDataVersions(deprecated: Boolean! = false): [ComputePickleDataVersion]
  computePickleUploadAuth(filename: String = "model.pkl", modelId: String): FileUploadAuth
  rounds(tournament: Int, number: Int): [Round]
  listDatasets(round: Int, tournament: Int): [String]
  dataset(filename: String!, round: Int, tournament: Int): String
}

type Mutation {
  createComputePickleUpload(filename: String!, tournament: Int!, modelId: String, dataVersionId: String,
                            dockerImageId: String): ComputePickleUpload
}

type Account { id: ID username: String models: [Model] }

type Model { id: ID name: String username: String tournament: Int computePickleUpload: ComputePickleUpload }

type ComputePickleUpload {
  id: ID filename: String insertedAt: String updatedAt: String modelId: String
  dockerImage: String dockerImageId: ID dockerImageName: String dataVersion: String dataVersionId: ID
  validationStatus: String triggerStatus: String triggers: [ComputePickleTrigger]
}

type ComputePickleTrigger { id: ID status: String insertedAt: String statuses: [ComputePickleTriggerStatus] }

type ComputePickleTriggerStatus { id: ID status: String description: String insertedAt: String }

type ComputePickleDockerImage {
  id: ID name: String image: String tag: String insertedAt: String default: Boolean deprecated: Boolean
  experimental: Boolean
}

type ComputePickleDataVersion { id: ID name: String default: Boolean deprecated: Boolean experimental: Boolean }

type FileUploadAuth { filename: String url: String accelerated: Boolean }

type Round { number: Int }
''')

TOURNAMENT = 8


def image(python: str, **flags) -> dict[str, Any]:
    tag = python.replace(".", "_")
    return {"id": str(uuid.uuid4()), "name": f"Python {python}", "image": f"numerai_predict_py_{tag}:a78dedd",
            "tag": "a78dedd", "default": python == "3.12", "deprecated": False, "experimental": False, **flags}


@dataclass
class Request:
    method: str
    path: str
    query: str | None = None
    variables: dict | None = None
    authorization: str | None = None


@dataclass
class LocalNumerai:
    """The account, its models and Numerai's lists; what the server was sent; what it should fail."""

    public_id: str = "PUBLICID"
    secret_key: str = "SECRETKEY"
    models: list[dict[str, Any]] = field(default_factory=lambda: [
        {"id": str(uuid.uuid4()), "name": "alpha", "tournament": TOURNAMENT, "computePickleUpload": None},
        {"id": str(uuid.uuid4()), "name": "beta", "tournament": TOURNAMENT, "computePickleUpload": None},
        {"id": str(uuid.uuid4()), "name": "signals_one", "tournament": 11, "computePickleUpload": None}])
    images: list[dict[str, Any]] = field(default_factory=lambda: [
        image("3.10"), image("3.11"), image("3.12"), image("3.13"), image("3.14", experimental=True),
        image("3.9", deprecated=True)])
    data_versions: list[dict[str, Any]] = field(default_factory=lambda: [
        {"id": str(uuid.uuid4()), "name": "v5.2", "default": False, "deprecated": False},
        {"id": str(uuid.uuid4()), "name": "v5.3", "default": True, "deprecated": False}])
    current_round: int = 1234
    datasets: Path | None = None  # a folder of <version>/<file> served as Numerai's datasets
    put_status: int | None = None
    http_status: int | None = None
    graphql_error: str | None = None
    auth_message: str = "Your API key is invalid or lacks the scope for this action"
    requests: list[Request] = field(default_factory=list)
    mutations: list[dict[str, Any]] = field(default_factory=list)
    uploaded: dict[str, bytes] = field(default_factory=dict)
    downloads: list[str] = field(default_factory=list)
    stall: threading.Event | None = None  # set: a download sends half its bytes, then waits for it to clear
    url: str = ""

    # ------------------------------------------------------------ the server

    def __enter__(self) -> "LocalNumerai":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def env(self, **extra: str) -> dict[str, str]:
        """What a command needs to talk to this server as the account's owner."""
        return {"NUMERAI_API_URL": self.url, "NUMERAI_PUBLIC_ID": self.public_id,
                "NUMERAI_SECRET_KEY": self.secret_key, **extra}

    def model(self, name: str) -> dict[str, Any]:
        return next(m for m in self.models if m["name"] == name)

    def image_named(self, name: str) -> dict[str, Any]:
        return next(i for i in self.images if i["name"] == name)

    def version_named(self, name: str) -> dict[str, Any]:
        return next(v for v in self.data_versions if v["name"] == name)

    # ------------------------------------------------------------ GraphQL

    def execute(self, body: dict, authorization: str | None) -> dict:
        if self.graphql_error:
            return {"errors": [{"message": self.graphql_error, "locations": [{"line": 1, "column": 1}]}],
                    "data": None}
        signed = authorization == f"Token {self.public_id}${self.secret_key}"
        result = graphql_sync(SCHEMA, body.get("query") or "", root_value=self._root(),
                              context_value={"signed": signed}, variable_values=body.get("variables"))
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [e.formatted for e in result.errors]
        return out

    def _root(self) -> dict[str, Any]:
        def signed(info) -> None:
            if not info.context["signed"]:
                raise GraphQLError(self.auth_message)

        def account(info):
            signed(info)
            return {"id": "account", "username": "someone", "models": self.models}

        def docker_images(info, deprecated=False):
            signed(info)
            return [i for i in self.images if deprecated or not i["deprecated"]]

        def data_versions(info, deprecated=False):
            signed(info)
            return [v for v in self.data_versions if deprecated or not v["deprecated"]]

        def upload_auth(info, filename="model.pkl", modelId=None):
            signed(info)
            stored = f"pickles/{modelId}/{uuid.uuid4().hex[:8]}-{filename}"
            return {"filename": stored, "url": f"{self.url}uploads/{stored}?signature=x", "accelerated": False}

        def create_upload(info, **variables):
            signed(info)
            self.mutations.append(variables)
            if not any(m["id"] == variables.get("modelId") for m in self.models):
                raise GraphQLError(f"no model with id {variables.get('modelId')}")
            chosen = next((i for i in self.images if i["id"] == variables.get("dockerImageId")), None)
            version = next((v for v in self.data_versions if v["id"] == variables.get("dataVersionId")), None)
            default = next(i for i in self.images if i["default"])
            upload = {"id": str(uuid.uuid4()), "filename": variables["filename"], "insertedAt": now(),
                      "modelId": variables.get("modelId"), "dockerImageName": (chosen or default)["name"],
                      "dockerImage": (chosen or default)["image"], "dataVersion": version["name"] if version else "v5.3",
                      "validationStatus": "pending", "triggerStatus": None, "triggers": []}
            self.model_by_id(variables["modelId"])["computePickleUpload"] = upload
            return upload

        def rounds(info, tournament=None, number=None):
            return [{"number": self.current_round}]

        def list_datasets(info, round=None, tournament=None):
            root = self.datasets
            return sorted(f"{v.name}/{f.name}" for v in root.iterdir() if v.is_dir() for f in v.iterdir()) if root else []

        def dataset(info, filename, round=None, tournament=None):
            return f"{self.url}files/{filename}"

        return {"account": account, "computePickleDockerImages": docker_images,
                "computePickleDataVersions": data_versions, "computePickleUploadAuth": upload_auth,
                "createComputePickleUpload": create_upload, "rounds": rounds, "listDatasets": list_datasets,
                "dataset": dataset}

    def model_by_id(self, model_id: str) -> dict[str, Any]:
        return next(m for m in self.models if m["id"] == model_id)

    def fail_upload(self, model: str, docker_image: str, description: str, status: str = "failed") -> None:
        """What Numerai shows for a pickle whose run failed (as a numerapi upload with no image would leave it)."""
        found = self.model(model)["computePickleUpload"]
        found.update(dockerImageName=docker_image, validationStatus=status, triggerStatus=status, triggers=[{
            "id": "trigger-1", "status": status, "insertedAt": "2026-12-01T10:00:00Z", "statuses": [
                {"status": "pending", "description": "Resources are being provisioned",
                 "insertedAt": "2026-12-01T10:00:00Z"},
                {"status": "running", "description": "Running the model", "insertedAt": "2026-12-01T10:01:00Z"},
                {"status": status, "description": description, "insertedAt": "2026-12-01T10:02:00Z"}]}])

    def set_upload(self, model: str, filename: str, **fields) -> None:
        """A pickle uploaded to the model by other means (the site, numerapi), as Numerai lists it."""
        self.model(model)["computePickleUpload"] = {
            "id": str(uuid.uuid4()), "filename": filename, "insertedAt": "2026-12-01T09:59:00Z",
            "dockerImageName": "Python 3.12", "dataVersion": "v5.3", "validationStatus": "pending",
            "triggerStatus": None, "triggers": [], **fields}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _handler(state: LocalNumerai):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args) -> None:  # quiet
            pass

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            raw = self._body()
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            state.requests.append(Request("POST", self.path, body.get("query"), body.get("variables"),
                                          self.headers.get("Authorization")))
            if state.http_status:
                return self._send(state.http_status, b"<html><body>Internal Server Error</body></html>", "text/html")
            self._send(200, json.dumps(state.execute(body, self.headers.get("Authorization"))).encode())

        def do_PUT(self) -> None:
            data = self._body()
            path = unquote(urlparse(self.path).path)
            state.requests.append(Request("PUT", path))
            if state.put_status:
                return self._send(state.put_status, b"<?xml version='1.0'?><Error><Code>AccessDenied</Code>"
                                  b"<Message>Request has expired</Message></Error>", "application/xml")
            state.uploaded[path.removeprefix("/uploads/")] = data
            self._send(200, b"")

        def do_GET(self) -> None:
            path = unquote(urlparse(self.path).path)
            state.requests.append(Request("GET", path))
            name = path.removeprefix("/files/")
            source = (state.datasets / name) if state.datasets else None
            if source is None or not source.is_file() or ".." in Path(name).parts:
                return self._send(404, b"not found", "text/plain")
            state.downloads.append(name)
            body = source.read_bytes()
            if state.stall is None or not state.stall.is_set():
                return self._send(200, body, "application/octet-stream")
            self.send_response(200)  # a download cut midway (a killed `data fetch` meets it)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            while state.stall.is_set():
                time.sleep(0.05)
            with contextlib.suppress(OSError):
                self.wfile.write(body[len(body) // 2:])

    return Handler


def served_folder(root: Path, versions=("v5.2", "v5.3")) -> Path:
    """A folder of datasets for the server: the base synthetic files as each version's live data."""
    from runner.data import synthetic

    source = synthetic.default_dir()
    for version in versions:
        (root / version).mkdir(parents=True, exist_ok=True)
        for name in ("live.parquet", "live_benchmark_models.parquet", "features.json"):
            (root / version / name).write_bytes((source / name).read_bytes())
    return root


__all__ = ["LocalNumerai", "Request", "image", "served_folder"]
