"""Evaluation: `evaluator` (scoring tasks with a model's parameters, also during training),
`eval_report` (tables and files) and the `flan-jax eval` entry point (`evaluate`)."""
