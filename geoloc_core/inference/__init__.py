"""The inference chain, in memory: search -> rerank -> LMM -> pool -> decision.

One module per stage, each over numpy arrays and small dataclasses. The benchmark steps
(steps/candidates, rerank, lmm, verification) wrap these with their files; `geoloc predict`
and the served model (predict/predictor.py) call them directly, so the two cannot drift apart.
"""
