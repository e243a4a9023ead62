"""`flan-jax sweep report`: the runs' evaluation results as Markdown tables and plots."""
from __future__ import annotations

import os
from typing import Mapping, Sequence

from flan_jax.sweep.grid import Run, human, slug
from flan_jax.sweep.manifest import write_text
from flan_jax.sweep.runner import latest_results

NORM_AVG = "Norm. avg"
LOGLIK = "answer log-lik. (nats/token)"


def collect(runs: Sequence[Run]) -> dict[str, dict[str, float]]:
  """run name -> {benchmark column: score, NORM_AVG: normalised average} (runs without results left out)."""
  scores = {}
  for r in runs:
    res = latest_results(r.model_dir)
    if res is None:
      continue
    s = {c: float(v) for c, v in res["columns"].items()}
    if res.get("normalized_average") is not None:
      s[NORM_AVG] = float(res["normalized_average"])
    # A smooth signal next to each column's score: the mean per-token log-likelihood of
    # the gold answers (teacher forced), which moves long before small models' exact
    # answers do.
    loglik: dict[str, list[float]] = {}
    for t in res.get("tasks", {}).values():
      if "target_logprob" in t.get("metrics", {}):
        loglik.setdefault(t["column"], []).append(float(t["metrics"]["target_logprob"]))
    for c, values in loglik.items():
      s[f"{c} {LOGLIK}"] = sum(values) / len(values)
    scores[r.name] = s
  return scores


def _layout(runs: Sequence[Run]):
  models = list(dict.fromkeys(r.model for r in runs))
  counts = sorted({r.num_tasks for r in runs})
  cots = [c for c in (True, False) if any(r.cot == c for r in runs)]
  by_cell = {(r.model, r.num_tasks, r.cot): r for r in runs}
  return models, counts, cots, by_cell


def _table(runs: Sequence[Run], value) -> str:
  models, counts, cots, by_cell = _layout(runs)
  heads = [f"{n} tasks {'+CoT' if c else 'no CoT'}" for n in counts for c in cots]
  lines = ["| Model | Params | " + " | ".join(heads) + " |", "|" + " --- |" * (len(heads) + 2)]
  for m in models:
    params = next(r.params for r in runs if r.model == m)
    cells = []
    for n in counts:
      for c in cots:
        r = by_cell.get((m, n, c))
        cells.append("n/a" if r is None else value(r))
    lines.append(f"| {m} | {human(params)} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _metrics(scores: Mapping[str, Mapping[str, float]]) -> list[str]:
  cols = []
  for s in scores.values():
    cols += [c for c in s if c not in cols and c != NORM_AVG]
  return ([NORM_AVG] if any(NORM_AVG in s for s in scores.values()) else []) + cols


def plot(runs: Sequence[Run], scores: Mapping, metric: str, out_dir: str) -> list[str]:
  """Two PNGs for one metric: score vs number of tasks (a line per model size; with and
  without CoT side by side) and score vs model size at the largest task count (with, without CoT)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  models, counts, cots, by_cell = _layout(runs)
  get = lambda m, n, c: scores.get(by_cell[(m, n, c)].name, {}).get(metric) if (m, n, c) in by_cell else None
  log_x = counts[0] > 0 and counts[-1] / counts[0] >= 10
  paths = []

  fig, axes = plt.subplots(1, len(cots), figsize=(5 * len(cots), 4), squeeze=False, sharey=True)
  for ax, c in zip(axes[0], cots):
    for m in models:
      pts = [(n, get(m, n, c)) for n in counts if get(m, n, c) is not None]
      if pts:
        ax.plot(*zip(*pts), marker="o", label=m)
    ax.set_title(f"fine-tuned {'with' if c else 'without'} CoT")
    ax.set_xlabel("number of fine-tuning tasks")
    if log_x:
      ax.set_xscale("log")
    ax.set_xticks(counts, [str(n) for n in counts])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  axes[0][0].set_ylabel(metric)
  fig.tight_layout()
  paths.append(os.path.join(out_dir, f"tasks_{slug(metric)}.png"))
  fig.savefig(paths[-1], dpi=100)
  plt.close(fig)

  n = counts[-1]
  fig, ax = plt.subplots(figsize=(5, 4))
  params = {m: next(r.params for r in runs if r.model == m) for m in models}
  for c in cots:
    pts = [(params[m], get(m, n, c)) for m in models if get(m, n, c) is not None]
    if pts:
      ax.plot(*zip(*sorted(pts)), marker="o", label=f"{'with' if c else 'without'} CoT")
  ax.set_xscale("log")
  ax.set_xlabel("model parameters")
  ax.set_ylabel(metric)
  ax.set_title(f"{metric} at {n} tasks")
  for m in models:
    ax.annotate(m, (params[m], ax.get_ylim()[0]), fontsize=7, rotation=90, va="bottom")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  paths.append(os.path.join(out_dir, f"size_{slug(metric)}.png"))
  fig.savefig(paths[-1], dpi=100)
  plt.close(fig)
  return paths


def report(root: str, runs: Sequence[Run], *, title: str = "sweep", timings: Mapping | None = None) -> str:
  """Writes ROOT/report.md and ROOT/*.png; returns the Markdown."""
  scores = collect(runs)
  metrics = _metrics(scores)
  missing = [r.name for r in runs if r.name not in scores]
  out = [f"# Scaling sweep `{title}`", "",
         f"{len(scores)} of {len(runs)} runs have evaluation results"
         + (f"; missing: {', '.join(missing)}" if missing else "") + ".",
         "Rows: model size. Columns: number of fine-tuning tasks, with (+CoT) or without the CoT data.", ""]
  plots = []
  for metric in metrics:
    digits = 2 if LOGLIK in metric else 1
    cell = lambda r, metric=metric, digits=digits: (f"{scores[r.name][metric]:.{digits}f}"
                                     if metric in scores.get(r.name, {}) else "-")
    out += [f"## {metric}", "", _table(runs, cell), ""]
    if scores:
      for p in plot(runs, scores, metric, root):
        plots.append(p)
        out.append(f"![{metric}]({os.path.basename(p)})")
      out.append("")
  out += ["## Training FLOPs", "", _table(runs, lambda r: f"{r.flops:.2e}"), ""]
  if timings:
    out += ["## Wall time (train + eval, s)", "",
            _table(runs, lambda r: (f"{timings[r.name]['train_s']:.0f} + {timings[r.name]['eval_s']:.0f}"
                                    if r.name in timings else "-")), ""]
  text = "\n".join(out) + "\n"
  write_text(os.path.join(root, "report.md"), text)
  return text
