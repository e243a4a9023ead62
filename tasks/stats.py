"""`flan-jax data stats MIXTURE [--n N]`: what a mixture's training stream looks like.

Renders the first N examples a run would train on (the sampled mixture's own stream, in
python) and prints, as percentages of N unless said otherwise:

  * shares by collection (the mixture's top-level members, e.g. flan2021 / t0sf / niv2 /
    cot / dialog) and by format (zsopt, fsnoopt, zscot, ...);
  * the share of examples that carry a rationale (CoT targets, CoT inversions' inputs);
  * the histogram of exemplars per few-shot prompt, and the few-shot format used
    (fixed-count, x-shot, NIv2 demonstrations or instances); the exemplars drawn before
    length pruning, and the share of fixed-count and x-shot prompts whose draw is not
    FLAN's (x-shot 2 or 3 of 25 over ten templates, five-shot 5);
  * per collection, the few-shot modes of its fs-opt prompts (FLAN: five-shot : x-shot =
    1 : 1), and the share of T0-SF examples from its 19 separated-options prompts;
  * the options item styles seen, and the share of zero-shot-with-options examples whose
    target is an option's label;
  * prompts over the input length (tokens + EOS > --inputs_length), and few-shot prompts
    over the few-shot budget (which the renderer never emits).

`mixture_stats(name, n)` returns the same figures as a dict (what tests check).
"""
from __future__ import annotations

import argparse
import collections
import sys

from flan_jax.tasks import api, templates
from flan_jax.tasks.collections import catalogue
from flan_jax.tasks import vocab as vocab_lib


def _collection(group: str) -> str:
  return group.removeprefix("flan2022_")


def _format(variant: str) -> str:
  return variant.rsplit("_", 1)[-1]


def _pct(part: int, whole: int) -> float:
  return 100.0 * part / whole if whole else 0.0


def _over(vocabulary, text: str, limit: int) -> bool:
  if len(text.encode("utf-8")) + 2 <= limit:  # never more tokens than bytes (+ EOS)
    return False
  return len(vocabulary.encode(text)) + 1 > limit


def mixture_stats(name: str, n: int = 20_000, *, seed: int = 0,
                  inputs_length: int = api.DEFAULT_INPUTS_LENGTH) -> dict:
  """Figures of the first `n` training examples of sampled mixture `name`."""
  source = api.sampled_mixture(name)
  groups = source.groups()
  budget = templates.fewshot_budget(inputs_length)
  drawn = source.for_inputs_length(inputs_length).sample(n, seed=seed)  # few-shot prompts fitted to it
  vocabulary = vocab_lib.default_vocabulary()
  by_collection, by_format = collections.Counter(), collections.Counter()
  by_collection_format = collections.Counter()
  shots, modes, styles = collections.Counter(), collections.Counter(), collections.Counter()
  drawn_counts, fsopt_modes = collections.Counter(), collections.Counter()
  rationale = zsopt_shown = zsopt_label = over = fewshot_over = off_rule = ruled = 0
  t0_separated = t0_total = 0
  for variant, ex in drawn:
    fmt = _format(variant)
    collection = _collection(groups.get(variant, variant))
    if collection.startswith("t0sf"):
      t0_total += 1
      t0_separated += variant.rsplit("_", 1)[0] in catalogue.T0SF_SEPARATED_OPTIONS
    if fmt == "fsopt" and ex.fewshot_mode:
      fsopt_modes[collection, ex.fewshot_mode] += 1
    if ex.fewshot_mode in ("xshot", "fixed"):
      ruled += 1
      drawn_counts[ex.exemplars_wanted] += 1
      off_rule += ex.exemplars_wanted not in ((2, 3) if ex.fewshot_mode == "xshot" else (5,))
    by_collection[collection] += 1
    by_format[fmt] += 1
    by_collection_format[collection, fmt] += 1
    rationale += ex.rationale
    if ex.option_style:
      styles[ex.option_style] += 1
      if fmt == "zsopt":
        zsopt_shown += 1
        zsopt_label += ex.label_target
    if ex.fewshot_mode:
      shots[len(ex.exemplar_indices)] += 1
      modes[ex.fewshot_mode] += 1
      fewshot_over += _over(vocabulary, ex.inputs, budget)
    over += _over(vocabulary, ex.inputs, inputs_length)
  total = len(drawn)
  return {
      "mixture": name, "n": total, "inputs_length": inputs_length, "fewshot_budget": budget,
      "collections": {k: _pct(v, total) for k, v in by_collection.most_common()},
      "formats": {k: _pct(v, total) for k, v in sorted(by_format.items())},
      # Within each collection, the share of each format (FLAN: equal, see mixtures.FORMAT_GROUPS).
      "collection_formats": {c: {f: _pct(by_collection_format[c, f], n_c)
                                 for f in sorted(f for (cc, f) in by_collection_format if cc == c)}
                             for c, n_c in by_collection.most_common()},
      "rationale": _pct(rationale, total),
      "exemplars": dict(sorted(shots.items())),
      "exemplars_drawn": dict(sorted(drawn_counts.items())),
      "fewshot_off_rule": _pct(off_rule, ruled),
      "fsopt_modes": {c: {m: _pct(fsopt_modes[c, m], sum(v for (cc, _), v in fsopt_modes.items() if cc == c))
                          for m in sorted(m for (cc, m) in fsopt_modes if cc == c)}
                      for c in sorted({c for c, _ in fsopt_modes})},
      "t0_separated_options": _pct(t0_separated, t0_total),
      "fewshot_modes": dict(modes.most_common()),
      "option_styles": dict(styles.most_common()),
      "zsopt_with_options": zsopt_shown,
      "zsopt_label_targets": _pct(zsopt_label, zsopt_shown),
      "over_input_length": over,
      "fewshot_over_budget": fewshot_over,
  }


def format_stats(s: dict) -> list[str]:
  lines = [f"{s['mixture']}: {s['n']} training examples (input length {s['inputs_length']}, "
           f"few-shot budget {s['fewshot_budget']} tokens)"]
  lines.append("collection  " + "  ".join(f"{k} {v:.1f}%" for k, v in s["collections"].items()))
  lines.append("format      " + "  ".join(f"{k} {v:.1f}%" for k, v in s["formats"].items()))
  for c, shares in s["collection_formats"].items():
    lines.append(f"  {c:<10}" + "  ".join(f"{k} {v:.1f}%" for k, v in shares.items()))
  lines.append(f"rationale   {s['rationale']:.1f}% of examples carry one")
  lines.append("exemplars   " + "  ".join(f"{k}:{v}" for k, v in s["exemplars"].items())
               + "  (" + ", ".join(f"{k} {v}" for k, v in s["fewshot_modes"].items()) + ")")
  lines.append("drawn       " + "  ".join(f"{k}:{v}" for k, v in s["exemplars_drawn"].items())
               + f"  (before length pruning; {s['fewshot_off_rule']:.2f}% of five-shot and x-shot "
               "prompts off FLAN's 5 and 2-3)")
  for c, shares in s["fsopt_modes"].items():
    lines.append(f"  {c:<10}fs-opt " + "  ".join(f"{k} {v:.1f}%" for k, v in shares.items()))
  lines.append(f"t0sf        {s['t0_separated_options']:.1f}% of T0-SF examples from its 19 "
               "separated-options prompts")
  lines.append(f"options     {len(s['option_styles'])} item styles: " + "  ".join(
      f"{k} {v}" for k, v in s["option_styles"].items()))
  lines.append(f"labels      {s['zsopt_label_targets']:.1f}% of {s['zsopt_with_options']} "
               "zero-shot-with-options examples have the option's label as target")
  lines.append(f"too long    {s['over_input_length']} prompts over the input length "
               f"({_pct(s['over_input_length'], s['n']):.2f}%); {s['fewshot_over_budget']} "
               "few-shot prompts over the budget")
  return lines


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="flan-jax data stats")
  p.add_argument("mixture")
  p.add_argument("--n", type=int, default=20_000, help="examples to render")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--inputs_length", type=int, default=api.DEFAULT_INPUTS_LENGTH,
                 help="TASK_FEATURE_LENGTHS['inputs'] of the run (sets the few-shot budget)")
  p.add_argument("--data_dir", default=None)
  args = p.parse_args(argv)
  return run(args)


def run(args) -> int:
  """`data stats` with parsed arguments (mixture, n, seed, inputs_length, data_dir)."""
  from flan_jax.tasks import lookup, mixtures  # pylint: disable=g-import-not-at-top
  if args.data_dir:
    lookup.import_task_modules(["flan_jax.tasks.mixtures"], data_dir=str(args.data_dir))
  if args.mixture not in api.sampled_mixture_names():
    why = mixtures.MISSING.get(args.mixture)
    print(f"data stats: {args.mixture!r} is not a registered Flan mixture"
          + (f" ({why})" if why else f"; known: {', '.join(api.sampled_mixture_names())}"),
          file=sys.stderr)
    return 2
  if args.n <= 0:
    print("data stats: --n must be positive", file=sys.stderr)
    return 2
  try:
    stats = mixture_stats(args.mixture, args.n, seed=args.seed,
                          inputs_length=args.inputs_length)
  except (FileNotFoundError, ValueError) as e:
    print(f"data stats: {e}", file=sys.stderr)
    return 1
  print("\n".join(format_stats(stats)))
  return 0


if __name__ == "__main__":
  sys.exit(main())
