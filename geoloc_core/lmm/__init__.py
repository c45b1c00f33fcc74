"""The LMM stage: G3's geo-diversification and DualGeo's reasoning over candidates.

Modules, one job each: settings (the `lmm` params section), prompts (chat messages), answers
(the strict coordinate parser), retry / budget / cache (mechanics shared with the place-text
step's client in text/lmm.py), backend (what a model must offer), client (the
OpenAI-compatible backend), local (the in-process transformers backend), runner (cache,
budget, retries and concurrency around a backend), errors, test_server (a local
OpenAI-compatible server for tests and benchmarks). The step is steps/lmm.py. Nothing here
imports dagster.
"""
