"""Process set-up shared by every command: argument parsers (`cli_args`), gin parsing and
entry points (`gin_utils`), console output (`console`), JAX's compilation cache
(`compile_cache`), multi-host initialisation (`distributed`), host-memory limits
(`host_memory`) and the run's exit codes, signals, locks and owned files (`run_guard`)."""
