"""The flan_jax task catalogue (installed as `flan_jax.tasks`)."""
