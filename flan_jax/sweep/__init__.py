"""Scaling sweeps (`flan-jax sweep`): the grid of runs (`grid`), their manifest
(`manifest`), running them here (`runner`), tables and plots (`plots`), submitting them to a
cluster (`submit`) and the command line (`sweep_cli`)."""
