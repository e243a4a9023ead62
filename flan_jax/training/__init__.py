"""Training: the run config (`config`), the input pipeline (`data`), the jitted train step
(`trainer`), progress lines and summaries (`progress`) and the `flan-jax train` entry
point (`train`)."""
