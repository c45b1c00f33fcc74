"""Retrieval: FAISS indexes over embeddings and nearest-neighbour predictions."""
