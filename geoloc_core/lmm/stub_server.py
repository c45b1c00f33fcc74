"""A stand-in LMM: a local OpenAI-compatible chat-completions server for offline use (tests,
benchmarks, demos without a key; `geoloc lmm-test-server`), on 127.0.0.1 only.

Its answer is computed from the prompt, so accuracy can be checked offline: the spherical mean
of the coordinates "(lat, lon)" the prompt's text lists before "far from" (G3's similar
neighbours, or all of DualGeo's candidates), plus seeded Gaussian noise of `noise_km`; with no
coordinates (zero-shot), a seeded random point: anywhere on the sphere, or on land with
land_only (the land mask takes seconds to load, so it is loaded at start). Seeds come from a
hash of the whole request's messages (images included) and the choice index, so the same
request always gets the same answers.

Faults, per request from a script (consumed one per request) or always on:
  401            Unauthorized (a wrong key: the client should stop, not retry)
  429            Too Many Requests with Retry-After: retry_after_s
  500            Internal Server Error
  hang           no answer for hang_s (past any sane client timeout)
  malformed      200 with a truncated JSON body
  prose          the JSON answer inside prose and a ```json fence
  out_of_range   latitude beyond 90
  integer        whole-number coordinates
  fewer_choices  n // 2 choices instead of n
  huge           10 MB of prose before the JSON answer (a runaway model)
Admin: GET /admin/stats (request counts), POST /admin/faults {"script": [...], "always": [...]},
POST /admin/reset (counters to zero). `serve()` runs it in the foreground for the CLI.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

FAULTS = (
    "401",
    "429",
    "500",
    "hang",
    "malformed",
    "prose",
    "out_of_range",
    "integer",
    "fewer_choices",
    "huge",
)
HUGE_ANSWER_CHARS = 10 * 1024 * 1024  # the "huge" fault: 10 MB of prose before the answer
LOOPBACK = ("127.0.0.1", "localhost", "::1")
EARTH_RADIUS_KM = 6371.0088
POINT = re.compile(r"\(\s*([+-]?\d{1,3}(?:\.\d+)?)\s*,\s*([+-]?\d{1,3}(?:\.\d+)?)\s*\)")
DISSIMILAR_MARKER = re.compile(r"far from|dissimilar", re.IGNORECASE)
TOKENS_PER_IMAGE = 85  # what OpenAI bills a low-detail image


def _check_faults(names: Iterable[str]) -> list[str]:
    names = list(names)
    unknown = sorted(set(names) - set(FAULTS))
    if unknown:
        raise ValueError(f"unknown test-server faults {unknown}; known: {list(FAULTS)}")
    return names


def _prompt_parts(messages: Any) -> tuple[str, int]:
    """(the text of every message part joined, the number of images)."""
    texts: list[str] = []
    images = 0
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            texts.append(content)
            continue
        for part in content if isinstance(content, list) else []:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text":
                texts.append(str(part.get("text", "")))
            elif part.get("type") == "image_url":
                images += 1
    return "\n".join(texts), images


def listed_points(text: str) -> list[tuple[float, float]]:
    """The coordinates a prompt lists as where the photo probably is (before "far from")."""
    marker = DISSIMILAR_MARKER.search(text)
    head = text[: marker.start()] if marker else text
    points = [(float(a), float(b)) for a, b in POINT.findall(head)]
    return [(lat, lon) for lat, lon in points if abs(lat) <= 90 and abs(lon) <= 180]


def spherical_mean(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    lat = np.radians([p[0] for p in points])
    lon = np.radians([p[1] for p in points])
    x, y, z = np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)
    mx, my, mz = float(x.mean()), float(y.mean()), float(z.mean())
    return math.degrees(math.atan2(mz, math.hypot(mx, my))), math.degrees(math.atan2(my, mx))


def _land_mask() -> Any:
    try:
        from global_land_mask import globe
    except ImportError:  # optional: anywhere on the sphere then
        return None
    return globe


def _random_point(rng: np.random.Generator, land: Any | None) -> tuple[float, float]:
    """Uniform on the sphere; with a land mask, uniform over land (rejection sampling)."""
    for _ in range(1000):
        lat = math.degrees(math.asin(rng.uniform(-1.0, 1.0)))
        lon = float(rng.uniform(-180.0, 180.0))
        if land is None or (abs(lat) < 84 and bool(land.is_land(lat, lon))):
            return lat, lon
    return lat, lon


def _jitter(lat: float, lon: float, km: float, rng: np.random.Generator) -> tuple[float, float]:
    north, east = rng.normal(0.0, km, 2)
    lat2 = float(np.clip(lat + math.degrees(north / EARTH_RADIUS_KM), -89.9999, 89.9999))
    scale = max(math.cos(math.radians(lat2)), 1e-6)
    lon2 = lon + math.degrees(east / (EARTH_RADIUS_KM * scale))
    return lat2, (lon2 + 180.0) % 360.0 - 180.0


class LmmStubServer:
    """Start with `with LmmStubServer(...) as server:`; `server.base_url` ends in /v1."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_s: float = 0.0,
        faults: Sequence[str] = (),
        always: Iterable[str] = (),
        hang_s: float = 30.0,
        retry_after_s: float = 0.0,
        noise_km: float = 3.0,
        land_only: bool = False,
    ) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"the LMM stub server binds loopback only ({LOOPBACK}), not {host}")
        self.latency_s = latency_s
        self.hang_s = hang_s
        self.retry_after_s = retry_after_s
        self.noise_km = noise_km
        self._land = _land_mask() if land_only else None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._script: list[str] = []
        self._always: set[str] = set()
        self.set_faults(faults, always)
        self._counts: Counter[str] = Counter()
        self._keys: set[str] = set()
        self._httpd = _Httpd((host, port), _handler_for(self))
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LmmStubServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # ends hangs and latency waits at once
        self._httpd.shutdown()
        self._httpd.server_close()

    def serve_forever(self) -> None:
        try:
            self._httpd.serve_forever()
        finally:
            self._stop.set()
            self._httpd.server_close()

    def __enter__(self) -> LmmStubServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- control ---------------------------------------------------------------------------
    def set_faults(self, script: Sequence[str] = (), always: Iterable[str] = ()) -> None:
        with self._lock:
            self._script = _check_faults(script)
            self._always = set(_check_faults(always))

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._keys.clear()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self._counts)
            keys = sorted(self._keys)
        return {
            "requests": counts.pop("requests", 0),
            "choices": counts.pop("choices", 0),
            "faults": {name: counts.get(f"fault:{name}", 0) for name in FAULTS},
            "authorization_sha256": keys,  # hashes only: the server never keeps a key
        }

    # -- answering -------------------------------------------------------------------------
    def _next_faults(self, authorization: str) -> set[str]:
        with self._lock:
            self._counts["requests"] += 1
            if authorization:
                self._keys.add(hashlib.sha256(authorization.encode()).hexdigest())
            faults = set(self._always)
            if self._script:
                faults.add(self._script.pop(0))
            for name in faults:
                self._counts[f"fault:{name}"] += 1
            return faults

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._stop.wait(seconds)

    def answer(self, body: dict[str, Any], faults: set[str]) -> dict[str, Any]:
        """The chat.completion object for one request body."""
        messages = body.get("messages", [])
        text, images = _prompt_parts(messages)
        digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).digest()
        n = max(int(body.get("n") or 1), 1)
        served = n // 2 if "fewer_choices" in faults else n
        points = listed_points(text)
        choices = []
        for index in range(served):
            rng = np.random.default_rng([int.from_bytes(digest[:8], "big"), index])
            centre = spherical_mean(points) if points else _random_point(rng, self._land)
            lat, lon = _jitter(*centre, self.noise_km, rng)
            choices.append(
                {
                    "index": index,
                    "message": {"role": "assistant", "content": _content(lat, lon, faults)},
                    "finish_reason": "stop",
                }
            )
        completion_tokens = sum(len(c["message"]["content"]) // 4 + 1 for c in choices)
        prompt_tokens = len(text) // 4 + 1 + TOKENS_PER_IMAGE * images
        with self._lock:
            self._counts["choices"] += served
        return {
            "id": "chatcmpl-geoloc-test",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model", "")),
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def _content(lat: float, lon: float, faults: set[str]) -> str:
    if "out_of_range" in faults:
        lat = 90.0 + abs(lat) + 1.0
    if "integer" in faults:
        answer = json.dumps({"latitude": round(lat), "longitude": round(lon)})
    else:
        answer = json.dumps({"latitude": round(lat, 6), "longitude": round(lon, 6)})
    if "huge" in faults:
        return "The scene suggests many places. " * (HUGE_ANSWER_CHARS // 32) + answer
    if "prose" in faults:
        return (
            "Looking at the vegetation, the road markings and the architecture, my best "
            f"guess is this place.\n```json\n{answer}\n```\nI hope this helps!"
        )
    return answer


def send_body(
    handler: BaseHTTPRequestHandler,
    status: int,
    payload: bytes,
    headers: dict[str, str] | None = None,
) -> None:
    """One JSON response body with its length, and any extra headers (Retry-After)."""
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    for name, header in (headers or {}).items():
        handler.send_header(name, header)
    handler.end_headers()
    handler.wfile.write(payload)


def send_json(
    handler: BaseHTTPRequestHandler, status: int, value: Any, headers: dict[str, str] | None = None
) -> None:
    send_body(handler, status, json.dumps(value).encode(), headers)


class _Httpd(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a burst of 32+ new connections must not be refused


def _handler_for(server: LmmStubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real endpoints do
        disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms ACK stall)

        def log_message(self, *_args: Any) -> None:  # quiet: tests read /admin/stats
            pass

        def _json(self, status: int, value: Any, headers: dict[str, str] | None = None):
            send_json(self, status, value, headers)

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            return json.loads(raw or b"{}")

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/admin/stats":
                self._json(200, server.stats())
            else:
                self._json(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._post()  # a client that timed out has hung up: nothing to tell it

        def _post(self) -> None:
            path = self.path.rstrip("/")
            try:
                body = self._body()
            except (ValueError, UnicodeDecodeError):
                self._json(400, {"error": {"message": "request body is not JSON"}})
                return
            if path == "/admin/faults":
                try:
                    server.set_faults(body.get("script", []), body.get("always", []))
                except ValueError as exc:
                    self._json(400, {"error": {"message": str(exc)}})
                    return
                self._json(200, {"ok": True})
            elif path == "/admin/reset":
                server.reset()
                self._json(200, {"ok": True})
            elif path == "/v1/chat/completions":
                self._chat(body)
            else:
                self._json(404, {"error": {"message": "not found"}})

        def _chat(self, body: dict[str, Any]) -> None:
            faults = server._next_faults(self.headers.get("Authorization", ""))
            server._wait(server.latency_s)
            if "hang" in faults:
                server._wait(server.hang_s)
            if "401" in faults:
                self._json(401, {"error": {"message": "invalid api key", "type": "auth"}})
            elif "429" in faults:
                retry = {"Retry-After": f"{server.retry_after_s:g}"}
                self._json(429, {"error": {"message": "rate limited", "type": "rate"}}, retry)
            elif "500" in faults:
                self._json(500, {"error": {"message": "overloaded", "type": "server"}})
            elif "malformed" in faults:
                send_body(self, 200, b'{"id": "chatcmpl-broken", "choices": [{"index": 0, "mess')
            else:
                self._json(200, server.answer(body, faults))

    return Handler


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    latency_s: float = 0.0,
    faults: Sequence[str] = (),
) -> None:
    """Run the stub server in the foreground until Ctrl-C (`geoloc lmm-test-server`).

    faults: fault names applied to every request (see FAULTS), e.g. ["prose"].
    """
    server = LmmStubServer(host, port, latency_s=latency_s, always=faults, land_only=True)
    print(f"LMM stub server on {server.base_url} (faults: {sorted(faults) or 'none'})")
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
