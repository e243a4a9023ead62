"""The Flan 2022 collection (Muffin, T0-SF, NIv2, CoT) as seqio registries.

  catalogue.py   every task of the collection, offline: name, dataset, category, language,
                 splits, metrics (no data read); `data_dir()` says where the data lives
  readers.py     example sources over the data dir: canonical JSONL, TFDS, Hugging Face
                 `datasets`, natural-instructions task JSON, CoT TSVs, published exports
  families.py    our templates, about ten per dataset family (with input inversions)
  tfds_converters.py  TFDS features -> family fields (74 Muffin tasks)
  muffin_extras.py    the other 6 Muffin tasks from their releases (Taskmaster,
                 CodeContests, DrRepair)
  muffin.py, t0sf.py, niv2.py, cot.py   register each collection's tasks (lazily: only
                 file names are looked at when registering; data is read when a dataset
                 is built)
  eval_suites.py held-out evaluation tasks (MMLU, BBH, TyDiQA, MGSM)

Importing this package registers nothing.
"""
