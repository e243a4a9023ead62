"""Evaluation reports: the paper's table in Markdown, JSON per step, TensorBoard scalars.

    paths = eval_report.write_results(results, "/tmp/run/eval")   # results of Evaluator.run
    print(eval_report.markdown_table([results]))
"""
from __future__ import annotations

import glob
import json
import os
from typing import Mapping, Sequence

from flan_jax.tasks import metrics


def markdown_table(results: Sequence[Mapping]) -> str:
  """Paper layout: one row per model/checkpoint (and a "CoT + SC" row beside it when
  self-consistency was run), one column per evaluated suite, Norm. avg; then, for the last
  result, the unweighted subject means of question-weighted columns, one line per suite on
  how its prompts were fitted, and one row per task."""
  cols = []
  for r in results:
    cols += [c for c in r["columns"] if c not in cols]
  cols.sort(key=lambda c: metrics.COLUMNS.index(c) if c in metrics.COLUMNS else len(metrics.COLUMNS))
  head = "| Model | " + " | ".join(cols) + " | Norm. avg |"
  lines = [head, "|" + " --- |" * (len(cols) + 2)]
  for r in results:
    label = r["name"] + (f" @ {r['step']}" if r.get("step") is not None else "")
    cells = [f"{r['columns'][c]:.1f}" if c in r["columns"] else "-" for c in cols]
    avg = r.get("normalized_average")
    lines.append(f"| {label} | " + " | ".join(cells) + f" | {'-' if avg is None else f'{avg:.1f}'} |")
    sc = r.get("self_consistency_columns") or {}
    if sc:
      how = r.get("self_consistency") or {}
      cells = [f"{sc[c]:.1f}" if c in sc else "-" for c in cols]
      lines.append(f"| {label}, CoT + SC ({how.get('samples')} samples, T={how.get('temperature')}) | "
                   + " | ".join(cells) + " | - |")
  if results:
    last = results[-1]
    notes = [f"{c}: {v:.1f} weighted by questions; {last['unweighted_columns'][c]:.1f} as the mean of its "
             "tasks" for c, v in last["columns"].items() if c in (last.get("unweighted_columns") or {})]
    notes += list((last.get("fitting") or {}).values())
    if notes:
      lines += [""] + [f"- {n}" for n in notes]
    lines += ["", "| Task | Column | Method | Scorer | Examples | Score | Random | Exemplars lost / cut | "
              "target log-lik |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for task, t in last["tasks"].items():
      ll = t["metrics"].get("target_logprob")
      fit = t.get("fitting")
      fit = f"{fit['lost_exemplars']} / {fit['truncated']}" if fit else "-"
      lines.append(f"| {task} | {t['column']} | {t['method']} | {t.get('scorer', '-')} | {t['num_examples']} | "
                   f"{t['score']:.1f} | {t['random_baseline']:.1f} | {fit} | {'-' if ll is None else f'{ll:.3f}'} |")
  return "\n".join(lines) + "\n"


def write_results(results: Mapping, output_dir: str, *, tensorboard: bool = True) -> dict[str, str]:
  """Writes results_<step>.json and .md, refreshes results.md (a row per results_*.json
  there) and TensorBoard scalars under `output_dir`. Returns the paths written."""
  os.makedirs(output_dir, exist_ok=True)
  tag = "init" if results.get("step") is None else str(results["step"])
  json_path = os.path.join(output_dir, f"results_{tag}.json")
  with open(json_path, "w") as f:
    json.dump(results, f, indent=1, default=float)
  md_path = os.path.join(output_dir, f"results_{tag}.md")
  with open(md_path, "w") as f:
    f.write(markdown_table([results]))
  every = []
  for p in glob.glob(os.path.join(output_dir, "results_*.json")):
    with open(p) as f:
      every.append(json.load(f))
  every.sort(key=lambda r: (r.get("step") is not None, r.get("step") or 0))
  all_path = os.path.join(output_dir, "results.md")
  with open(all_path, "w") as f:
    f.write(markdown_table(every))
  if tensorboard:
    log_scalars(results, output_dir)
  return {"json": json_path, "markdown": md_path, "table": all_path}


def log_scalars(results: Mapping, output_dir: str) -> None:
  from tensorboardX import SummaryWriter
  step = results.get("step") or 0
  with SummaryWriter(output_dir) as writer:
    for col, v in results["columns"].items():
      writer.add_scalar(f"eval/{col.replace(' ', '_')}", v, step)
    for col, v in (results.get("self_consistency_columns") or {}).items():
      writer.add_scalar(f"eval/{col.replace(' ', '_')}_SC", v, step)
    if results.get("normalized_average") is not None:
      writer.add_scalar("eval/normalized_average", results["normalized_average"], step)
    for task, t in results["tasks"].items():
      for k, v in t["metrics"].items():
        writer.add_scalar(f"eval_tasks/{task}/{k}", v, step)


