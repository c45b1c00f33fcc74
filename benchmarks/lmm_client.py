"""LMM client throughput: requests per second against the local test server at 200 ms latency.

Ours is the LMM stage's runner (lmm/runner.py with the OpenAI backend, the real openai client,
no cache); the peer is the place-text step's client (text/lmm.py, LmmDescriber) on the same
server at the same concurrency, with a throwaway cache. Each level sends a bounded number of
distinct requests (no cache hits) and stops at a time limit, so the whole run takes seconds.
Goal: at concurrency 32, at least 20 times the requests per second of concurrency 1 (the
ideal is 32: every request waits 200 ms on the server).

Each level is measured --repeats times (rounds over the levels) and the median is reported.

    python benchmarks/lmm_client.py [--latency 0.2] [--per-level-s 10] [--repeats 3]

Not a test: it prints a markdown table (what | ours | peer | ratio | goal | met?).
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import openai
from bench_rows import Row, bench_parser, print_and_write, verdict

from geoloc_core.lmm.client import OpenAIBackend
from geoloc_core.lmm.runner import PromptJob, SampleRunner
from geoloc_core.lmm.settings import DEFAULTS, LmmSettings
from geoloc_core.lmm.stub_server import LmmStubServer
from geoloc_core.text.lmm import LmmDescriber, PlaceQuery
from geoloc_core.text.settings import LmmSettings as TextLmmSettings

LEVELS = (1, 8, 32)
GOAL_SPEEDUP = 20.0
SECTION = "6 LMM client"


def request_count(concurrency: int) -> int:
    """Enough requests for a steady rate: 15 at c=1 (3 s), 8 waves at higher concurrency."""
    return max(15, 8 * concurrency)


def openai_client(server: LmmStubServer, timeout_s: float = 30.0) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=server.base_url, api_key="bench", timeout=timeout_s, max_retries=0
    )


def ours(server: LmmStubServer, concurrency: int, count: int, limit_s: float) -> float:
    section = copy.deepcopy(DEFAULTS) | {
        "provider": "openai",
        "model": "bench",
        "base_url": server.base_url,
        "n": 1,
        "max_concurrency": concurrency,
    }
    settings = LmmSettings.from_section(section)
    runner = SampleRunner(settings, OpenAIBackend(settings, openai_client(server)), cache=None)
    deadline = time.perf_counter() + limit_s

    def jobs() -> Iterator[PromptJob]:
        for k in range(count):
            if time.perf_counter() > deadline:
                return
            text = f"Where was photo {k} taken? Answer with latitude and longitude."
            yield PromptJob(k, lambda text=text: [{"role": "user", "content": text}])

    start = time.perf_counter()
    done = sum(1 for result in runner.run(jobs()) if result.texts[0] is not None)
    return done / (time.perf_counter() - start)


def peer(server: LmmStubServer, concurrency: int, count: int, cache_dir: Path) -> float:
    settings = TextLmmSettings(
        base_url=server.base_url,
        model="bench",
        api_key_env="UNUSED",
        prompt="Describe a street in {place} at {lat}, {lon}.",
        send_image=False,
        max_concurrency=concurrency,
        max_requests=count,
        max_retries=0,
        backoff_s=1.0,
        timeout_s=30.0,
        temperature=0.0,
        max_tokens=20,
        cache_dir=cache_dir,
    )
    describer = LmmDescriber(settings, openai_client(server))
    queries = [PlaceQuery(str(k), f"Place {k}", 0.0, float(k % 180)) for k in range(count)]
    start = time.perf_counter()
    answers = describer.describe(queries)
    return len(answers) / (time.perf_counter() - start)


def run(latency: float = 0.2, per_level_s: float = 10.0, repeats: int = 3) -> list[Row]:
    """Median requests/s over `repeats` rounds per level, ours and the peer."""
    samples: dict[str, dict[int, list[float]]] = {
        "ours": {c: [] for c in LEVELS},
        "peer": {c: [] for c in LEVELS},
    }
    with LmmStubServer(latency_s=latency) as server, tempfile.TemporaryDirectory() as tmp:
        for round_ in range(max(1, repeats)):
            for concurrency in LEVELS:
                count = request_count(concurrency)
                samples["ours"][concurrency].append(ours(server, concurrency, count, per_level_s))
                cache = Path(tmp) / f"peer-{concurrency}-{round_}"
                samples["peer"][concurrency].append(peer(server, concurrency, count, cache))
                print(
                    f"round {round_ + 1}, c={concurrency:>2}: {count} requests, ours "
                    f"{samples['ours'][concurrency][-1]:.1f}/s, peer "
                    f"{samples['peer'][concurrency][-1]:.1f}/s"
                )
    rates = {who: {c: statistics.median(v) for c, v in levels.items()}
             for who, levels in samples.items()}
    rows = []
    for concurrency in LEVELS:
        mine, theirs = rates["ours"][concurrency], rates["peer"][concurrency]
        ideal = concurrency / latency
        rows.append(
            Row(
                SECTION,
                f"LMM requests/s at concurrency {concurrency}, {latency * 1000:.0f} ms server "
                f"(ideal {ideal:.0f}); peer: the place-text client",
                f"{mine:.1f}",
                f"{theirs:.1f}",
                f"{mine / theirs:.2f}",
                "report",
                values={
                    "concurrency": concurrency,
                    "ours_runs": samples["ours"][concurrency],
                    "peer_runs": samples["peer"][concurrency],
                    "ideal": ideal,
                },
            )
        )
    mine = rates["ours"][32] / rates["ours"][1]
    theirs = rates["peer"][32] / rates["peer"][1]
    rows.append(
        Row(
            SECTION,
            "LMM speed-up c=32 / c=1 (ideal 32x)",
            f"{mine:.1f}x",
            f"{theirs:.1f}x",
            f"{mine / theirs:.2f}",
            f">= {GOAL_SPEEDUP:.0f}x",
            verdict(mine, GOAL_SPEEDUP),
            {"ours_speedup": mine, "peer_speedup": theirs},
        )
    )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--latency", type=float, default=0.2, help="server latency, seconds")
    parser.add_argument("--per-level-s", type=float, default=10.0, help="time limit per level")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the levels")
    args = parser.parse_args(argv)
    rows = run(args.latency, args.per_level_s, args.repeats)
    print_and_write(
        f"LMM client against the test server at {args.latency * 1000:.0f} ms", rows, args.json
    )


if __name__ == "__main__":
    main()
