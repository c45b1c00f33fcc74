"""A local server on 127.0.0.1 that speaks the part of the Hugging Face hub's API that
huggingface_hub's downloads use, plus plain HTTP files, for the fetch tests.

Hub (what hf_hub_download, get_hf_file_metadata and HfApi.repo_info call, huggingface_hub 2.x):
- HEAD/GET /{repo_id}/resolve/{revision}/{path} (models) and /datasets/{repo_id}/resolve/...:
  X-Repo-Commit, ETag (an LFS file's sha256, else its git blob id), Content-Length,
  Accept-Ranges; a Range request `bytes=N-` gets 206 with Content-Range; an unknown path 404
  with X-Error-Code EntryNotFound, an unknown revision RevisionNotFound.
- GET /api/{models|datasets}/{repo_id}/revision/{revision}: {"id", "sha", "siblings": [...]},
  each sibling with rfilename, size, blobId and lfs {sha256, size, pointerSize}.
Plain HTTP: GET /plain/{name} with the same Range support; /page/{name} answers an HTML page.

Faults: `cut_once` holds paths whose first GET stops half-way and drops the connection.
Every request is recorded (method, path, Range, body bytes sent) in `requests`.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

LFS_SUFFIXES = (".bin", ".pth", ".safetensors", ".tar", ".zip", ".index")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def etag_of(path: str, data: bytes) -> str:
    if path.endswith(LFS_SUFFIXES):
        return hashlib.sha256(data).hexdigest()
    return git_blob_id(data)


@dataclass
class Repo:
    refs: dict[str, str]  # branch -> commit
    commits: dict[str, dict[str, bytes]]  # commit -> path -> bytes

    def commit_of(self, revision: str) -> str | None:
        if revision in self.commits:
            return revision
        return self.refs.get(revision)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    range: str | None
    sent: int  # body bytes written


@dataclass
class FakeHub:
    repos: dict[tuple[str, str], Repo] = field(default_factory=dict)  # (type, repo_id)
    plain: dict[str, bytes] = field(default_factory=dict)
    cut_once: set[str] = field(default_factory=set)
    requests: list[Seen] = field(default_factory=list)
    url: str = ""

    def bodies(self, since: int = 0) -> list[Seen]:
        """GETs that sent file bytes (downloads), from request number `since` on."""
        return [r for r in self.requests[since:] if r.method == "GET" and r.sent > 0
                and "/api/" not in r.path]


RESOLVE = re.compile(
    r"^/(?P<ds>datasets/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$"
)
API = re.compile(r"^/api/(?P<type>models|datasets)/(?P<repo>[^/]+/[^/]+)/revision/(?P<rev>[^/]+)$")


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _record(self, sent: int) -> None:
            hub.requests.append(Seen(self.command, urlparse(self.path).path,
                                     self.headers.get("Range"), sent))

        def _error(self, status: int, code: str = "") -> None:
            body = json.dumps({"error": code or "not found"}).encode()
            self.send_response(status)
            if code:
                self.send_header("X-Error-Code", code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self._record(0)  # before the client can have the whole answer
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _send_file(self, data: bytes, extra: dict[str, str], key: str,
                       content_type: str = "application/octet-stream") -> None:
            start = 0
            wanted = self.headers.get("Range")
            match = re.fullmatch(r"bytes=(\d+)-", wanted or "")
            if match:
                start = int(match.group(1))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self._record(0)
                    self.end_headers()
                    return
            body = data[start:]
            self.send_response(206 if match else 200)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Type", content_type)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(body)))
            if match:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            if self.command == "HEAD":
                self._record(0)
                self.end_headers()
                return
            self.end_headers()
            if key in hub.cut_once and self.command == "GET":
                hub.cut_once.discard(key)
                half = body[: len(body) // 2]
                self.wfile.write(half)
                self.wfile.flush()
                self._record(len(half))
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._record(len(body))  # a test may look as soon as its client has read the body
            self.wfile.write(body)

        def _resolve(self, match: re.Match[str]) -> None:
            kind = "dataset" if match["ds"] else "model"
            repo = hub.repos.get((kind, match["repo"]))
            if repo is None:
                return self._error(404, "RepoNotFound")
            commit = repo.commit_of(unquote(match["rev"]))
            if commit is None:
                return self._error(404, "RevisionNotFound")
            path = unquote(match["file"])
            files = repo.commits[commit]
            if path not in files:
                return self._error(404, "EntryNotFound")
            data = files[path]
            etag = etag_of(path, data)
            headers = {"X-Repo-Commit": commit, "ETag": f'"{etag}"'}
            self._send_file(data, headers, urlparse(self.path).path)

        def _api(self, match: re.Match[str]) -> None:
            kind = "dataset" if match["type"] == "datasets" else "model"
            repo = hub.repos.get((kind, match["repo"]))
            commit = repo.commit_of(unquote(match["rev"])) if repo else None
            if commit is None:
                return self._error(404, "RevisionNotFound" if repo else "RepoNotFound")
            siblings = []
            for path, data in sorted(repo.commits[commit].items()):
                sibling = {"rfilename": path, "size": len(data), "blobId": git_blob_id(data)}
                if path.endswith(LFS_SUFFIXES):
                    sibling["lfs"] = {"sha256": etag_of(path, data), "size": len(data),
                                      "pointerSize": 134}
                siblings.append(sibling)
            body = json.dumps({"id": match["repo"], "sha": commit, "siblings": siblings}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self._record(0)
            self.end_headers()
            self.wfile.write(body)

        def _dispatch(self) -> None:
            path = urlparse(self.path).path
            if match := API.match(path):
                return self._api(match)
            if match := RESOLVE.match(path):
                return self._resolve(match)
            if path.startswith("/plain/") and path[7:] in hub.plain:
                return self._send_file(hub.plain[path[7:]], {}, path)
            if path.startswith("/page/"):
                return self._send_file(b"<html>a download button</html>", {}, path,
                                       content_type="text/html; charset=utf-8")
            return self._error(404)

        do_GET = _dispatch
        do_HEAD = _dispatch

    return Handler


class HubServer:
    """The server in a daemon thread; `with HubServer(hub) as url: ...`."""

    def __init__(self, hub: FakeHub) -> None:
        self.hub = hub
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
        self.server.daemon_threads = True
        hub.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self.hub

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
