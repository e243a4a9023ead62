"""The front door: every subcommand's --help (fresh processes, no JAX or TensorFlow imported),
and the README's "Registering a task" snippet and command run as written from a new directory."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (argv, words its help must show)
HELPS = [
    ([], ["train", "eval", "infer", "generate", "convert", "plan", "flops", "tasks", "data", "launch", "sweep"]),
    (["train"], ["MODEL_DIR", "REQUIRED", "TRAIN_STEPS", "TASK_MODULES", "quickstart.gin", "flan_t5_xl.gin"]),
    (["train", "--gin_file=gin/recipes/flan_t5_xl.gin"], ["TRAIN_STEPS              38000", "TOPOLOGY"]),
    (["eval"], ["CHECKPOINT_PATH", "EVAL_MIXTURES_OR_TASKS", "quickstart_eval.gin", "eval_paper_benchmarks.gin"]),
    (["infer"], ["INFER_OUTPUT_DIR", "MIXTURE_OR_TASK_NAME", "gin/runs/infer.gin"]),
    (["generate"], ["--checkpoint", "--interactive", "--vocab", "--num_beams", "--temperature", "--top_p", "PROMPT"]),
    (["convert"], ["from-hf", "to-hf"]),
    (["convert", "from-hf"], ["src", "dst", "model.json", "spiece.model"]),
    (["convert", "to-hf"], ["config.json", "tokenizer_config.json"]),
    (["plan"], ["--gin_file", "--topology", "--mfu", "TOPOLOGY macro", "--compile", "--search"]),
    (["flops"], ["--paper"]),
    (["tasks"], ["count", "list", "show", "--data_dir"]),
    (["tasks", "list"], ["--collection", "--mixtures", "--all", "--task_module"]),
    (["tasks", "show"], ["--format", "--split", "task001_"]),
    (["data"], ["prepare"]),
    (["data", "prepare"], ["mmlu", "bbh", "tydiqa", "mgsm", "all", "--data_dir", "--timeout"]),
    (["launch"], ["--target", "tpu-vm", "xpk", "slurm", "skypilot", "local", "--dry_run", "--topology", "--zone",
                  "--num_nodes", "--num_processes", "--gin_file"]),
    (["sweep"], ["run", "status", "report", "--dry_run", "--target", "--max_in_flight", "--topology", "--list"]),
    (["sweep", "run"], ["--grid", "--root"]),
    (["sweep", "status"], ["--root"]),
    (["sweep", "report"], ["--root", "report.md"]),
]

_PROBE = """
import json, sys, time
t = time.perf_counter()
from flan_jax import cli
try:
  rc = cli.main(sys.argv[1:])
except SystemExit as e:
  rc = e.code or 0
heavy = sorted(m for m in ("jax", "tensorflow", "seqio", "flax") if m in sys.modules)
print("\\nPROBE " + json.dumps({"rc": rc, "heavy": heavy, "seconds": time.perf_counter() - t}))
"""


def _probe(argv: list[str]) -> tuple[dict, str]:
  out = subprocess.run([sys.executable, "-c", _PROBE, *argv], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
  text = out.stdout + out.stderr
  line = next((ln for ln in out.stdout.splitlines() if ln.startswith("PROBE ")), None)
  assert line is not None, text[-3000:]
  return json.loads(line[len("PROBE "):]), text


@pytest.mark.parametrize("argv,words", HELPS, ids=[" ".join(a) or "flan-jax" for a, _ in HELPS])
def test_every_help_answers_without_jax_or_tensorflow(argv, words):
  result, text = _probe([*argv, "--help"])
  assert result["rc"] == 0, text
  assert result["heavy"] == [], f"{argv} --help imported {result['heavy']}"
  missing = [w for w in words if w not in text]
  assert not missing, f"`flan-jax {' '.join(argv)} --help` does not mention {missing}:\n{text}"
  print(f"flan-jax {' '.join(argv)} --help: {result['seconds']:.2f}s in-process")


def test_flops_without_a_flag_prints_its_help():
  result, text = _probe(["flops"])
  assert (result["rc"], result["heavy"]) == (0, [])
  assert "--paper" in text and "usage: flan-jax flops" in text


def _readme_section(title: str) -> str:
  with open(os.path.join(REPO, "README.md")) as f:
    text = f.read()
  start = text.index(f"\n## {title}\n")
  end = text.find("\n## ", start + 1)
  return text[start:end]


def _flan_jax_command() -> list[str]:
  """The `flan-jax` console script next to this Python (as a user runs it), else `python -P -m`
  (which, like the script, does not put the working directory on sys.path)."""
  script = shutil.which("flan-jax", path=os.path.dirname(sys.executable))
  return [script] if script else [sys.executable, "-P", "-m", "flan_jax.cli"]


@pytest.mark.slow
def test_readme_register_a_task_runs_as_written_from_a_new_directory(tmp_path, monkeypatch):
  section = _readme_section("Registering a task")
  snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
  command = re.search(r"```bash\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
  words = shlex.split(command)
  assert words[:2] == ["flan-jax", "train"]
  (tmp_path / "my_tasks.py").write_text(snippet)
  (tmp_path / "data").mkdir()
  rows = [{"question": f"What is {i} doubled?", "answer": str(2 * i)} for i in range(24)]
  for split, part in (("train", rows[:20]), ("validation", rows[20:])):
    (tmp_path / "data" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))

  # The README's command as written, then (later bindings win) a MODEL_DIR of this test and a
  # 2-step, tiny-batch run so that it takes seconds.
  model_dir = tmp_path / "run"
  extra = [f"--gin.MODEL_DIR={model_dir}", "--gin.TRAIN_STEPS=2", "--gin.BATCH_SIZE=4",
           "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 16}", "--gin.train.log_every=1"]
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
  out = subprocess.run(_flan_jax_command() + words[1:] + extra, cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=900)
  assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
  assert "done: step 2" in out.stdout
  assert "MIXTURE_OR_TASK_NAME = 'my_mix'" in (model_dir / "config.gin").read_text()

  # The snippet's mixture really mixes the embedded mixture with the new task.
  from flan_jax.tasks import api  # pylint: disable=g-import-not-at-top
  monkeypatch.chdir(tmp_path)
  monkeypatch.syspath_prepend(str(tmp_path))
  import my_tasks  # noqa: F401  pylint: disable=g-import-not-at-top,import-outside-toplevel
  members = set(api.sampled_mixture_tasks("my_mix"))
  assert {"my_doubling_zsopt", "my_doubling_fsnoopt", "embedded_arithmetic_zscot", "embedded_sort_words_fsopt"} <= members
  assert not any(m.startswith(("embedded_date_arithmetic", "embedded_sort_numbers")) for m in members)  # held out
  sys.modules.pop("my_tasks", None)
