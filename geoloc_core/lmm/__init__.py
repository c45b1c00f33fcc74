"""The LMM stage: G3's geo-diversification and DualGeo's reasoning over candidates.

Modules, one job each: settings (the `lmm` params section), prompts (chat messages), jobs (the
prompt jobs per query: G3's and DualGeo's), plans (a benchmark's jobs from its candidate
tables), answers (the strict coordinate parser), retry / budget / cache (mechanics shared with
the place-text step's client in text/lmm.py), backend (what a model must offer, and the
configured one), client (the OpenAI-compatible backend), local (the in-process transformers
backend), runner (cache, budget, retries and concurrency around a backend), stage_summary (a
benchmark's counts), errors, stub_server (an OpenAI-compatible stand-in server for offline
use). Asking and parsing is the inference chain's (inference/lmm.py); the step is
steps/lmm.py. Nothing here imports dagster.
"""
