"""Checks the held-out suites' prompts against the releases' own files, and counts how they fit.

  python scripts/check_eval_prompts.py DATA_DIR [--vocab spiece.model] [--input_length 2048]

DATA_DIR holds what `flan-jax data prepare bbh mmlu mgsm` writes (any subset):
  * BBH: every CoT prompt must be the release's cot-prompts file (the text after its dashed
    header line) followed by "\\n\\nQ: <input>\\nA: Let's think step by step."; prints how many
    of each task's examples are verbatim.
  * MMLU CoT: each subject's prompt in mmlu-cot.json, split into header and exemplars, must
    join back to the same text.
  * MGSM: each language renders 8 native exemplars, each holding the language's answer phrase.
Then, with the vocabulary given (default: the shipped quickstart one), how many prompts of
each suite lose whole exemplars or are cut at the input length.
"""
from __future__ import annotations

import argparse
import collections
import json
import pathlib
import sys


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("data_dir")
  parser.add_argument("--vocab", default=None, help="a SentencePiece model (default: the shipped vocabulary)")
  parser.add_argument("--input_length", type=int, default=2048)
  args = parser.parse_args(argv)
  import seqio
  from flan_jax.evaluation import evaluator
  from flan_jax.tasks import eval_suites as es
  from flan_jax.tasks import vocab as vocab_lib
  root = pathlib.Path(args.data_dir)
  vocab = seqio.SentencePieceVocabulary(args.vocab) if args.vocab else vocab_lib.default_vocabulary()
  fits = collections.defaultdict(collections.Counter)

  def fit(suite, rows):
    for r in rows:
      _, _, dropped, truncated = evaluator.fit_prompt(vocab.encode, r["prefix"], r["shots"], r["query"],
                                                      args.input_length, eos_id=vocab.eos_id)
      fits[suite].update(prompts=1, lost=dropped > 0, dropped=dropped, truncated=truncated)

  if (root / "bbh" / "cot-prompts").is_dir():
    verbatim = total = 0
    for task in es.BBH_TASKS:
      text = (root / "bbh" / "cot-prompts" / f"{task}.txt").read_text(encoding="utf-8")
      body = text.split("-----", 1)[1].strip()
      examples = json.loads((root / "bbh" / f"{task}.json").read_text(encoding="utf-8"))["examples"]
      rows = es.bbh_rows(task, cot=True, data_dir=root)
      same = sum(r["inputs"] == f"{body}\n\nQ: {x['input']}\nA: Let's think step by step."
                 for r, x in zip(rows, examples))
      verbatim, total = verbatim + same, total + len(rows)
      if same != len(rows):
        print(f"BBH {task}: {same}/{len(rows)} CoT prompts verbatim")
      fit("BBH CoT", rows)
      fit("BBH direct", es.bbh_rows(task, cot=False, data_dir=root))
    print(f"BBH: {verbatim}/{total} CoT prompts equal the release's prompt text, 27 tasks")
  if (root / "mmlu" / "mmlu-cot.json").is_file():
    prompts = json.loads((root / "mmlu" / "mmlu-cot.json").read_text(encoding="utf-8"))
    rejoined = 0
    shots = collections.Counter()
    for text in prompts.values():
      header, exemplars = es.split_fewshot_prompt(text)
      rejoined += header + "".join(exemplars) == text.strip() + "\n\n"
      shots[len(exemplars)] += 1
    print(f"MMLU CoT: {rejoined}/{len(prompts)} prompts split into header + exemplars and join back; "
          f"exemplars per subject {dict(sorted(shots.items()))}")
  if (root / "mgsm" / "exemplars.py").is_file():
    for lang in (*es.MGSM_LANGUAGES, es.MGSM_ENGLISH):
      rows = es.mgsm_rows(lang, root)
      ok = all(any(p in s for p in es.MGSM_ANSWER_PHRASES[lang]) for s in rows[0]["shots"])
      print(f"MGSM {lang}: {len(rows)} questions, {len(rows[0]['shots'])} native exemplars, "
            f"answer phrase in each: {ok}; query ends {rows[0]['query'].splitlines()[-1]!r}")
      fit(f"MGSM {lang}", rows)
  print(f"fitting at input length {args.input_length} with {getattr(vocab, 'sentencepiece_model_file', 'the shipped vocabulary')}:")
  for suite, c in fits.items():
    print(f"  {suite}: {c['prompts']} prompts, {c['lost']} lost whole exemplars ({c['dropped']} dropped), "
          f"{c['truncated']} cut from the left")
  return 0


if __name__ == "__main__":
  sys.exit(main())
