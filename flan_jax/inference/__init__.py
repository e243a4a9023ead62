"""Decoding and inference: `decoding` (greedy, sampling, beam search over a compiled step),
`loading` (a checkpoint's model and vocabulary ready to decode), and the entry points
`infer` (`flan-jax infer`) and `generate` (`flan-jax generate`)."""
