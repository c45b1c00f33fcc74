"""Assets grouped by domain: data, model, retrieval, evaluation, serving."""
