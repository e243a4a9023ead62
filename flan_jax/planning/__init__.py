"""Per-chip memory and step time of a recipe: the analytic planner (`plan`), the trainer's step
compiled for a TPU topology with libtpu (`compiled`, `tpu`, `hlo`), the search over settings
(`search`), slice and cluster shapes (`topology`) and `flan-jax plan` (`plan_cli`)."""
