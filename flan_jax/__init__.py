"""flan_jax: instruction fine-tuning (FLAN) in JAX, T5X-style.

One subpackage per job, each importing only the ones listed below it (`.importlinter`):

  cli.py         the `flan-jax` command
  sweep/         scaling sweeps: grids of runs, run here or submitted through launch
  launch/        TPU VMs, xpk, SLURM, SkyPilot and local processes (installed from launch/)
  planning/      per-chip memory and step time of a recipe, analytic and compiled for TPU
  training/      the run config, input pipeline, train step, FLOPs, `flan-jax train`
  evaluation/    the evaluator, reports, `flan-jax eval`
  inference/     decoding, loading a checkpoint to decode, `flan-jax infer` / `generate`
  checkpointing/ orbax checkpoints, T5X and Hugging Face readers, `flan-jax convert`
  tasks/         the task catalogue, rendering, caching, held-out suites (installed from tasks/)
  models/        model families (T5, PaLM) and the saved model record
  core/          partitioning, Adafactor, losses
  runtime/       process set-up: gin, console, compilation cache, multi-host start, run guard
"""
