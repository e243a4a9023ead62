"""The README's registered task, mixed with the embedded mixture, trains by a gin change only."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_gin_only_change_trains_on_a_registered_task(tmp_path):
  rows = [{"question": f"What is {i} plus {i}?", "answer": str(2 * i)} for i in range(40)]
  for split, part in (("train", rows[:32]), ("validation", rows[32:])):
    (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
  (tmp_path / "my_tasks.py").write_text(textwrap.dedent(f"""
      from flan_jax.tasks import api, embedded, templates

      doubling = [templates.Template("{{question}}", "{{answer}}"),
                  templates.Template("Answer briefly: {{question}}", "{{answer}}")]
      names = api.register_flan_task(
          "my_doubling",
          {{"train": {str(tmp_path / 'train.jsonl')!r}, "validation": {str(tmp_path / 'validation.jsonl')!r}}},
          doubling, metrics=["exact_match"])
      api.register_mixture("my_mix", ["flan_jax_embedded"] + names, cap=1000)
      """))
  cmd = [sys.executable, "-m", "flan_jax.cli", "train", "--gin_file=gin/recipes/quickstart.gin",
         f"--gin.MODEL_DIR={tmp_path / 'run'}", "--gin.TRAIN_STEPS=3", "--gin.BATCH_SIZE=4",
         "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 16}",
         "--gin.TASK_MODULES=['flan_jax.tasks.embedded', 'my_tasks']", "--gin.MIXTURE_OR_TASK_NAME=my_mix"]
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1",
             PYTHONPATH=f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
  out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "done: step 3" in out.stdout
  config = (tmp_path / "run" / "config.gin").read_text()
  assert "my_mix" in config
