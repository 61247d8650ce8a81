"""Neural GPUs and baselines that learn algorithms, in JAX."""
