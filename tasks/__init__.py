"""The flan_jax task catalogue (installed as `flan_jax.tasks`).

  templates.py          Template and the FLAN formats (zs/fs x opt/noopt, CoT); pure python
  sources.py            in-memory, JSONL/TSV and seqio sources behind one interface
  api.py                register_flan_task / register_mixture and the task catalogue
  metrics.py            postprocessors and metrics the tasks declare
  vocab.py              the shipped default SentencePiece vocabulary
  embedded_families.py  generators and templates of the built-in synthetic tasks
  embedded.py           registers them: mixtures flan_jax_embedded(_heldout)
  build_vocab.py        rebuilds data/flan_jax_spm.model

Importing this package registers nothing; import a registering module (e.g.
`flan_jax.tasks.embedded`) for its tasks.
"""
