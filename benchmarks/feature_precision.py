"""Feature precision: what storing the frozen tower's outputs in fp16 (features.precision: fp16,
the default) instead of fp32 (both papers' CLIP outputs) does to retrieval ranks, at the full
profile's sizes: 768-d features (ViT-L/14's projection), >= 100k references, 1k queries.

Real CLIP features are not iid: they share a large common direction (two unrelated photos
have cosine ~0.5), their spectrum decays, and photos of one place cluster. The features here are
drawn that way: a common mean, a power-law spectrum in a random basis, places as clusters, and
queries that are either new views of a reference photo (a small perturbation: the near-tie
regime where fp16 rounding could flip ranks) or new photos of a known place. Both sides are
rounded to fp16 as the cache stores them, then compared by cosine as the retrieval does.

Reported, fp16 ranks against fp32 ranks of the same features:
- top-1 agreement (the same nearest reference);
- recall@k: the share of fp32's top-k found in fp16's top-k;
- the largest change of a cosine score, against the median gap between neighbours;
- the bytes per image of the cache (pooled + token_grid^2 tokens).

    python benchmarks/feature_precision.py [--references 100000] [--queries 1000]

Not a test: it prints numbers (docs/performance.md, "Feature precision").
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

KS = (1, 5, 10, 50)


def clip_like(
    references: int, queries: int, dim: int, places: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(references, dim) and (queries, dim) float32 features shaped like CLIP's (see above)."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    scale = np.sqrt(1.0 / np.arange(1, dim + 1))  # power-law spectrum
    mixing = (basis * scale).astype(np.float32)  # column i scaled by sqrt(lambda_i)

    def draw(n: int) -> np.ndarray:
        return rng.standard_normal((n, dim), dtype=np.float32) @ mixing.T

    common = draw(1)[0]
    common *= 1.3 * np.linalg.norm(draw(1)[0]) / np.linalg.norm(common)
    centres = draw(places)
    place = rng.integers(0, places, references)
    refs = common + 0.8 * centres[place] + 0.6 * draw(references)
    half = queries // 2
    views = rng.integers(0, references, half)  # new views of reference photos
    new = rng.integers(0, places, queries - half)  # new photos of known places
    query = np.concatenate([
        refs[views] + 0.15 * draw(half),
        common + 0.8 * centres[new] + 0.6 * draw(queries - half),
    ])
    norm = 12.0 / np.linalg.norm(refs, axis=1).mean()  # ViT-L/14 embedding norms are O(10)
    return (refs * norm).astype(np.float32), (query * norm).astype(np.float32)


def top_k(refs: torch.Tensor, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine scores and indices of the k nearest references per query (float32 math)."""
    r = torch.nn.functional.normalize(refs.float(), dim=1)
    q = torch.nn.functional.normalize(queries.float(), dim=1)
    scores, index = [], []
    for start in range(0, len(q), 250):
        s, i = (q[start : start + 250] @ r.T).topk(k, dim=1)
        scores.append(s)
        index.append(i)
    return torch.cat(scores), torch.cat(index)


def compare(refs: np.ndarray, queries: np.ndarray) -> dict[str, float]:
    k = max(KS)
    exact_s, exact_i = top_k(torch.from_numpy(refs), torch.from_numpy(queries), k)
    half_r = torch.from_numpy(refs.astype(np.float16))
    half_q = torch.from_numpy(queries.astype(np.float16))
    _, half_i = top_k(half_r, half_q, k)
    agree = (exact_i[:, 0] == half_i[:, 0]).float().mean()
    out: dict[str, float] = {"top1_agreement": float(agree)}
    for kk in KS:
        hits = [
            len(set(a[:kk].tolist()) & set(b[:kk].tolist())) / kk
            for a, b in zip(exact_i, half_i, strict=True)
        ]
        out[f"recall@{kk}"] = float(np.mean(hits))
    # the same pairs scored both ways: how far fp16 moves a cosine
    rescored = (
        torch.nn.functional.normalize(half_q.float(), dim=1)
        .unsqueeze(1)
        .mul(torch.nn.functional.normalize(half_r.float(), dim=1)[exact_i])
        .sum(-1)
    )
    out["max_score_change"] = float((rescored - exact_s).abs().max())
    out["median_gap_top1_top2"] = float((exact_s[:, 0] - exact_s[:, 1]).median())
    out["median_gap_rank10_rank11"] = float((exact_s[:, 9] - exact_s[:, 10]).median())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--references", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--places", type=int, default=5_000)
    parser.add_argument("--token-grid", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()
    start = time.perf_counter()
    refs, queries = clip_like(args.references, args.queries, args.dim, args.places, args.seed)
    r = refs / np.linalg.norm(refs, axis=1, keepdims=True)
    pairs = r[:2000] @ r[2000:4000].T
    result = compare(refs, queries)
    per_image = (1 + args.token_grid**2) * args.dim
    result.update(
        references=args.references,
        queries=args.queries,
        dim=args.dim,
        mean_cosine_unrelated=float(pairs.mean()),
        bytes_per_image_fp16=per_image * 2,
        bytes_per_image_fp32=per_image * 4,
        seconds=time.perf_counter() - start,
    )
    for key, value in result.items():
        print(f"{key:28s} {value:.6g}" if isinstance(value, float) else f"{key:28s} {value}")
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(result, stream, indent=2)


if __name__ == "__main__":
    main()
