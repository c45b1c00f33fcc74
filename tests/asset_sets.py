"""The assets a settings change must mark stale, named once for the tests that change them."""

# an LMM setting: the LMM steps and everything that reads their answers
BELOW_LMM = frozenset(
    {"lmm_diversification", "lmm_reasoning", "verification", "metrics", "report", "served_model"}
)
# a model or training setting: re-training and everything after it, never the backbone
BELOW_MODEL = BELOW_LMM | {
    "alignment_model",
    "reference_embeddings",
    "retrieval_index",
    "candidates",
    "rerank",
}
