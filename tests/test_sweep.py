"""The scaling sweep: grid expansion, FLOPs, launch dry runs, the report, and a miniature study end to end."""
from __future__ import annotations

import json
import os
import re
import time

import pytest

from flan_jax.planning import plan
from flan_jax.training import flops
from flan_jax.sweep import grid, sweep_cli, sweep_report

PAPER = "gin/sweeps/paper_scaling.gin"
MINI = "gin/sweeps/mini_scaling.gin"


def test_paper_grid_is_every_size_count_and_cot_cell():
  paper = grid.load_grid(PAPER)
  runs = grid.expand(paper)
  # 8 sizes x (5 task counts with CoT + 4 without: the 9-task mixture is the CoT data alone).
  assert len(runs) == 8 * 9
  assert len({r.name for r in runs}) == len(runs) == len({r.model_dir for r in runs})
  assert not any(r.num_tasks == 9 and not r.cot for r in runs)
  r = next(r for r in runs if r.name == "t5-xl-282-nocot")
  assert "MIXTURE_OR_TASK_NAME = 'flan_scaling_282_tasks_no_cot'" in r.bindings
  assert r.model_dir == "gs://BUCKET/flan_scaling/t5-xl-282-nocot"
  # FLOPs of the run = FLOPs of a step of the recipe x its TRAIN_STEPS.
  recipe = plan.recipe_from_gin(["gin/recipes/flan_t5_xl.gin"])
  step = flops.train_step_flops(recipe.model_config, recipe.batch_size, recipe.input_length, recipe.target_length)
  assert r.train_steps == recipe.train_steps
  assert r.flops == pytest.approx(step * recipe.train_steps)
  sizes = {r.model: r.params for r in runs}
  assert list(sizes) == ["t5-small", "t5-base", "t5-large", "t5-xl", "t5-xxl", "palm-8b", "palm-62b", "palm-540b"]
  assert sizes["palm-540b"] == pytest.approx(540e9, rel=0.01)


def test_grid_errors_name_the_mistake():
  with pytest.raises(ValueError, match="tiny-2x.*not in SweepGrid.models"):
    grid.load_grid(MINI, ["SweepGrid.models = {'tiny': 'gin/recipes/quickstart.gin'}"])


def test_sweep_dry_run_launches_each_run(capsys):
  rc = sweep_cli.main(["--grid", PAPER, "--gin.SweepGrid.models={'t5-xl': 'gin/recipes/flan_t5_xl.gin'}",
                   "--gin.SweepGrid.task_counts=[9, 89]", "--target=tpu-vm", "--zone=us-central2-b", "--dry_run",
                   "--skip_data_check"])  # the data check has its own test in test_launch.py
  out = capsys.readouterr().out
  assert rc == 0
  assert [ln.split()[2].rstrip(":") for ln in out.splitlines() if ln.startswith("# [")] == [
      "t5-xl-9-cot", "t5-xl-89-cot", "t5-xl-89-nocot"]
  assert "--gin.MIXTURE_OR_TASK_NAME=flan_scaling_89_tasks_no_cot" in out
  assert "--gin.MODEL_DIR=gs://BUCKET/flan_scaling/t5-xl-89-nocot" in out
  # Submit, then watch: one wheel for the sweep, each run copies it, none is followed to its end.
  assert out.count("-m pip wheel") == 1
  assert "--wheel-dir=/" in out and "flan_jax_sweep_paper-scaling" in out
  assert out.count("flan_jax_sweep_paper-scaling/flan_jax-") == 3  # one scp per run
  assert "tail -n +1 -F" not in out
  assert out.count("setsid nohup") == 3
  assert "# then: flan-jax sweep status --root=gs://BUCKET/flan_scaling" in out


def test_sweep_launch_goes_on_past_a_run_that_cannot_launch(capsys):
  # Without --zone=... every tpu-vm launch is fine in a dry run; a 1-chip topology fits no T5-XXL.
  rc = sweep_cli.main(["--grid", PAPER, "--gin.SweepGrid.models={'t5-xxl': 'gin/recipes/flan_t5_xxl.gin'}",
                   "--gin.SweepGrid.task_counts=[89]", "--target=tpu-vm", "--topology=v4-8", "--dry_run",
                   "--skip_data_check"])  # fails on fit, not on data
  captured = capsys.readouterr()
  assert rc == 1
  assert captured.out.count("# [") == 2
  assert "2 launch(es) failed: t5-xxl-89-cot, t5-xxl-89-nocot" in captured.err


def test_list_prints_runs_and_flops(capsys):
  assert sweep_cli.main(["--grid", MINI, "--list"]) == 0
  out = capsys.readouterr().out
  assert "tiny-2x-6-nocot" in out and "mini_scaling_6_families_no_cot" in out
  assert "12 runs" in out


def test_mini_mixtures_are_nested_and_split_by_cot():
  from flan_jax.tasks import mini_scaling
  for n in range(1, 6):
    assert set(mini_scaling.tasks_of(n)) < set(mini_scaling.tasks_of(n + 1))
  assert any(t.endswith("cot") for t in mini_scaling.tasks_of(1))
  assert not any(t.endswith("cot") for t in mini_scaling.tasks_of(6, cot=False))
  with pytest.raises(ValueError, match="1..6"):
    mini_scaling.tasks_of(7)


def _fake_results(model_dir, step, held_out, cot):
  os.makedirs(os.path.join(model_dir, "eval"), exist_ok=True)
  with open(os.path.join(model_dir, "eval", f"results_{step}.json"), "w") as f:
    json.dump({"name": "x", "step": step, "columns": {"Held-out Direct": held_out, "Held-out CoT": cot},
               "normalized_average": (held_out + cot) / 2, "tasks": {}}, f)


def test_report_has_a_table_per_column_and_plots(tmp_path):
  runs = [grid.Run(f"{m}-{n}-{'cot' if c else 'nocot'}", m, n, c, "r.gin", (), str(tmp_path / f"{m}{n}{c}"),
                    p, 10, p * 60.0)
          for m, p in (("small", 1e6), ("big", 4e6)) for n in (1, 3, 6) for c in (True, False)]
  for i, r in enumerate(runs):
    _fake_results(r.model_dir, 5, 10.0 + i, 20.0 + i)
    _fake_results(r.model_dir, 2, 0.0, 0.0)  # an earlier evaluation: the report takes the latest step
  text = sweep_report.report(str(tmp_path), runs, title="t")
  tables = re.findall(r"## ([^\n]+)\n\n(\| Model .+?)\n\n", text, re.S)
  assert [t[0] for t in tables] == ["Norm. avg", "Held-out Direct", "Held-out CoT", "Training FLOPs"]
  direct = tables[1][1].splitlines()
  assert direct[0] == ("| Model | Params | 1 tasks +CoT | 1 tasks no CoT | 3 tasks +CoT | 3 tasks no CoT "
                       "| 6 tasks +CoT | 6 tasks no CoT |")
  assert direct[2] == "| small | 1M | 10.0 | 11.0 | 12.0 | 13.0 | 14.0 | 15.0 |"
  for name in ("tasks_norm-avg.png", "size_norm-avg.png", "tasks_held-out-cot.png", "size_held-out-direct.png"):
    assert (tmp_path / name).stat().st_size > 0
  assert (tmp_path / "report.md").read_text() == text


def test_report_marks_missing_runs(tmp_path):
  runs = [grid.Run("a-1-cot", "a", 1, True, "r.gin", (), str(tmp_path / "a"), 10, 10, 1.0),
          grid.Run("b-1-cot", "b", 1, True, "r.gin", (), str(tmp_path / "b"), 20, 10, 2.0)]
  _fake_results(runs[0].model_dir, 3, 5.0, 6.0)
  text = sweep_report.report(str(tmp_path), runs)
  assert "1 of 2 runs have evaluation results; missing: b-1-cot" in text
  assert "| b | 20 | - |" in text


@pytest.mark.slow
def test_mini_scaling_sweep_end_to_end(tmp_path, capsys):
  """The miniature study at test size: 2 model sizes x +-CoT (4 runs of 5 steps), trained and
  evaluated in subprocesses by `flan-jax sweep run`, then reported with every cell filled."""
  root = str(tmp_path / "mini")
  start = time.perf_counter()
  rc = sweep_cli.main([
      "run", "--grid", MINI, "--root", root,
      "--gin.SweepGrid.task_counts=[1]",
      "--gin.SweepGrid.eval_overrides=['EVAL_MAX_EXAMPLES = 2', 'EVAL_INPUT_LENGTH = 64', 'MAX_DECODE_LEN = 8', "
      "'BIGBENCH_TASKS = []']",
      "--gin.TRAIN_STEPS=5", "--gin.BATCH_SIZE=4", "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 16}"])
  assert rc == 0
  print(f"4 runs in {time.perf_counter() - start:.0f}s")
  text = open(os.path.join(root, "report.md")).read()
  assert "4 of 4 runs have evaluation results." in text
  for metric in ("Norm. avg", "Held-out Direct", "Held-out CoT"):
    table = text.split(f"## {metric}\n\n")[1].split("\n\n")[0].splitlines()
    assert [row.split(" | ")[0] for row in table[2:]] == ["| tiny", "| tiny-2x"]
    assert all(re.fullmatch(r"-?\d+\.\d", cell.strip()) for row in table[2:] for cell in row.strip("|").split("|")[2:])
  for png in ("tasks_norm-avg.png", "size_norm-avg.png", "tasks_held-out-direct.png", "size_held-out-cot.png"):
    assert os.path.getsize(os.path.join(root, png)) > 0
  # The report is rebuilt from ROOT/sweep.json alone, and a second `run` trains nothing.
  assert sweep_cli.main(["report", "--root", root]) == 0
  assert open(os.path.join(root, "report.md")).read() == text
  assert sweep_cli.main(["run", "--grid", MINI, "--root", root, "--gin.SweepGrid.task_counts=[1]",
                     "--gin.TRAIN_STEPS=5", "--gin.BATCH_SIZE=4",
                     "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 16}"]) == 0
  assert capsys.readouterr().out.count("has eval results, skipped") == 4


def test_gpu_sweep_asks_for_gpu_topologies_once_then_takes_them(capsys):
  tiny = ["--grid", PAPER, "--gin.SweepGrid.models={'t5-small': 'gin/recipes/flan_t5_small.gin'}",
          "--gin.SweepGrid.task_counts=[89]", "--target=slurm", "--dry_run", "--skip_data_check"]
  with pytest.raises(ValueError) as e:
    sweep_cli.main(tiny)
  assert str(e.value) == (
      "--target=slurm runs on GPU clusters, but the recipes of t5-small name TPU slices (their TOPOLOGY macro). "
      "Give one GPU cluster for every run (--topology=h100x64) or one per size, e.g. as many GPUs as each "
      "recipe's slice has chips:\n  --topology=t5-small=h100x8")
  assert sweep_cli.main([*tiny, "--topology=t5-small=h100x16"]) == 0
  out = capsys.readouterr().out
  assert out.count("sbatch ./t5-small-89-") == 2 and "2 nodes x 8 GPUs (h100x16)" in out
  with pytest.raises(ValueError, match="'t5-xl=h100x8' is not SIZE=TOPOLOGY with SIZE in SweepGrid.models"):
    sweep_cli.main([*tiny, "--topology=t5-xl=h100x8"])


_FAKE_SLURM = """#!/bin/bash
# Fake SLURM for the test: sbatch queues a job by name; each squeue of a job counts one poll,
# and a job ends (sacct: COMPLETED) after two polls.
d={state}
tool=$(basename "$0")
name=$(printf '%s\\n' "$@" | sed -n 's/^--name=//p')
case $tool in
  sbatch) job=$(basename "$1" .sbatch); echo "sbatch $job $(ls $d/run_* 2>/dev/null | wc -l)" >> $d/events
          touch $d/run_$job; echo "Submitted batch job 1";;
  squeue) [ -f $d/run_$name ] || exit 0; n=$(( $(cat $d/polls_$name 2>/dev/null || echo 0) + 1 ))
          echo $n > $d/polls_$name
          if [ $n -le 2 ]; then echo RUNNING; else rm $d/run_$name; echo "done $name" >> $d/events; fi;;
  sacct)  [ -f $d/polls_$name ] && echo COMPLETED;;
esac
"""


def test_cluster_sweep_submits_every_run_within_the_bound_and_status_shows_them(tmp_path, monkeypatch, capsys):
  bin_dir, state = tmp_path / "bin", tmp_path / "slurm"
  bin_dir.mkdir()
  state.mkdir()
  for tool in ("sbatch", "squeue", "sacct"):
    (bin_dir / tool).write_text(_FAKE_SLURM.format(state=state))
    (bin_dir / tool).chmod(0o755)
  monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
  root = tmp_path / "sweep"
  rc = sweep_cli.main(["--grid", MINI, "--gin.SweepGrid.models={'tiny': 'gin/recipes/quickstart.gin'}",
                   "--gin.SweepGrid.model_overrides={}",
                   "--gin.SweepGrid.task_counts=[1, 3]", f"--root={root}", "--target=slurm", "--topology=h100x8",
                   f"--out_dir={tmp_path / 'scripts'}", "--max_in_flight=2", "--poll_s=0"])
  out = capsys.readouterr().out
  assert rc == 0, out
  events = (state / "events").read_text().splitlines()
  submitted = [e.split()[1] for e in events if e.startswith("sbatch")]
  assert submitted == ["tiny-1-cot", "tiny-1-nocot", "tiny-3-cot", "tiny-3-nocot"]
  assert max(int(e.split()[2]) for e in events if e.startswith("sbatch")) == 1  # never 2 already running
  assert [e for e in events if e.startswith("sbatch tiny-3")][0] == "sbatch tiny-3-cot 0"
  assert events.index("sbatch tiny-3-cot 0") > events.index("done tiny-1-cot")  # waited for a slot
  assert "# submitted 4 of 4 runs; where they are: flan-jax sweep status --root=" in out
  manifest = json.loads((root / "sweep.json").read_text())
  assert manifest["submitted"]["target"] == "slurm" and len(manifest["submitted"]["runs"]) == 4

  (root / "tiny-3-nocot").mkdir(parents=True)
  (root / "tiny-3-nocot" / "train_metrics.jsonl").write_text('{"step": 50, "loss": 3.0}\n{"step": 100}\n')
  assert sweep_cli.main(["status", f"--root={root}"]) == 0
  lines = {ln.split()[0]: ln.split() for ln in capsys.readouterr().out.splitlines()[2:-1]}
  assert lines["tiny-1-cot"][1:4] == ["succeeded", "-/150", "no"]   # sacct: COMPLETED
  assert lines["tiny-3-nocot"][1:4] == ["running", "100/150", "no"]  # squeue: RUNNING
