"""Analysis of the source and target models: conductance, ranking, weights, similarity, discriminability."""
