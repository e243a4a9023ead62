"""Launchers (installed as `flan_jax.launch`)."""
