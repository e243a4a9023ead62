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
  """Paper layout: one row per model/checkpoint, one column per evaluated suite, Norm. avg;
  then one row per task of the last result."""
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
  if results:
    last = results[-1]
    lines += ["", "| Task | Column | Method | Examples | Score | Random | target log-lik |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for task, t in last["tasks"].items():
      ll = t["metrics"].get("target_logprob")
      lines.append(f"| {task} | {t['column']} | {t['method']} | {t['num_examples']} | {t['score']:.1f} | "
                   f"{t['random_baseline']:.1f} | {'-' if ll is None else f'{ll:.3f}'} |")
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
    if results.get("normalized_average") is not None:
      writer.add_scalar("eval/normalized_average", results["normalized_average"], step)
    for task, t in results["tasks"].items():
      for k, v in t["metrics"].items():
        writer.add_scalar(f"eval_tasks/{task}/{k}", v, step)


