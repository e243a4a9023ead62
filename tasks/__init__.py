"""The flan_jax task catalogue (installed as `flan_jax.tasks`).

  templates.py          Template and the FLAN formats (zs/fs x opt/noopt, CoT); pure python
  sources.py            in-memory, JSONL/TSV and seqio sources behind one interface
  render.py             a task's rows through its templates into the FLAN formats (few-shot budget)
  api.py                register_flan_task / register_mixture / register_eval_task and the catalogue
  lookup.py             task modules imported (with their data dir), names found, close names suggested
  mixtures.py           the Flan 2022 mixtures (flan2022_submix and its collections), sampled
  collections/          the four FLAN collections (Muffin, T0-SF, NIv2, CoT): catalogue, readers, templates
  metrics.py            postprocessors and metrics the tasks declare; the evaluator's records
  scoring.py            the held-out benchmarks' own answer rules
  eval_suites.py        MMLU, BBH, TyDiQA GoldP, MGSM (and BIG-bench) as evaluation tasks
  vocab.py              the shipped default SentencePiece vocabulary
  build_vocab.py        rebuilds data/flan_jax_spm.model
  embedded_families.py  generators and templates of the built-in synthetic tasks
  embedded.py           registers them: mixtures flan_jax_embedded(_heldout)
  mini_scaling.py       the miniature scaling study's task sets
  storage.py            paths and URLs (gs://, file://, ram://) behind one interface
  data_cli.py           `flan-jax data`: prepare, cache and stats
  prepare.py            `flan-jax data prepare`: fetching the collections and benchmarks
  archives.py           downloads and archives unpacked only after every member is checked
  package_index.py      a pip-configured package index client (BIG-bench's source archive)
  cache.py              `flan-jax data cache`: render and tokenize once (local processes)
  cache_reader.py       reading the cache: freshness and integrity checks, cached datasets
  cache_beam.py         the same cache built by an Apache Beam pipeline
  stats.py              `flan-jax data stats`: a mixture's shares, formats and lengths
  tasks_cli.py          `flan-jax tasks`: list, show and render tasks

Importing this package registers nothing; import a registering module (e.g.
`flan_jax.tasks.embedded`) for its tasks.
"""
