"""A careless or hostile user: symlinks where the run writes, changed settings on resume, torn
logs, hostile gin values in launch scripts, convert over user files, broken caches, unbounded
generation, malformed inputs. Each case fails on the code before these guarantees existed."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from flan_jax import cli
from flan_jax.training import progress
from flan_jax.runtime import run_guard

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = ["--gin_file=gin/recipes/quickstart.gin", "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 16}",
         "--gin.BATCH_SIZE=8", "--gin.train.log_every=1", "--gin.train.input_lookahead=0"]


def _train(model_dir, *extra, steps=2):
  return cli.main(["train", *QUICK, f"--gin.MODEL_DIR={model_dir}", f"--gin.TRAIN_STEPS={steps}", *extra])


def _one_line(err: str) -> list[str]:
  return [l for l in err.strip().splitlines() if l and not l.startswith(("compilation cache: ", "note: "))]


@pytest.fixture(scope="module")
def two_steps(tmp_path_factory):
  """A quickstart-sized run trained to step 2 (copied by each test that changes it)."""
  import gin
  run = tmp_path_factory.mktemp("two_steps") / "run"
  gin.clear_config()
  assert _train(run) == 0
  gin.clear_config()
  return run


def _copy(run, tmp_path):
  dst = tmp_path / "run"
  shutil.copytree(run, dst)
  return dst


def test_a_lock_file_that_is_a_symlink_is_refused_and_its_target_kept(tmp_path, capsys):
  victim = tmp_path / "notes.txt"
  victim.write_text("my precious notes\n")
  run = tmp_path / "run"
  run.mkdir()
  os.symlink(victim, run / run_guard.LOCK_NAME)
  assert _train(run) == run_guard.EXIT_CONFIG
  err = capsys.readouterr()
  assert "is a symbolic link" in err.out + err.err and str(run / run_guard.LOCK_NAME) in err.out + err.err
  assert victim.read_text() == "my precious notes\n"
  assert not (run / "checkpoints").exists()


@pytest.mark.slow
@pytest.mark.parametrize("change, named", [
    (["--gin.MIXTURE_OR_TASK_NAME='flan_jax_embedded_heldout'"], "MIXTURE_OR_TASK_NAME: 'flan_jax_embedded' when"),
    (["--gin.BATCH_SIZE=16"], "BATCH_SIZE: 8 when the run started, 16 now"),
    (["--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 8}"], "TASK_FEATURE_LENGTHS.inputs: 64 when the run started, 32 now"),
])
def test_a_resume_with_another_data_stream_is_refused_then_accepted_with_the_override(two_steps, tmp_path, capsys,
                                                                                     change, named):
  run = _copy(two_steps, tmp_path)
  assert _train(run, *change, steps=3) == 2
  err = capsys.readouterr().err
  assert named in err and "--gin.train.allow_changed_run=True" in err and len(_one_line(err)) == 1, err
  assert sorted(os.listdir(run / "checkpoints")) == ["2"], "nothing trained"
  assert _train(run, *change, "--gin.train.allow_changed_run=True", steps=3) == 0
  out = capsys.readouterr().out
  assert "resuming" in out and named.split(":")[0] in out
  recorded = json.loads((run / run_guard.RUN_FILE).read_text())
  assert recorded != json.loads((two_steps / run_guard.RUN_FILE).read_text())
  assert "3" in os.listdir(run / "checkpoints")


@pytest.mark.slow
def test_a_resume_records_the_new_train_steps_in_config_gin(two_steps, tmp_path):
  run = _copy(two_steps, tmp_path)
  assert "TRAIN_STEPS = 2" in (run / "config.gin").read_text()
  assert _train(run, steps=4) == 0
  assert "TRAIN_STEPS = 4" in (run / "config.gin").read_text()


@pytest.mark.slow
def test_the_metrics_log_stays_valid_after_a_torn_line_and_a_fallback(two_steps, tmp_path):
  run = _copy(two_steps, tmp_path)
  log = run / "train_metrics.jsonl"
  lines = log.read_text().splitlines()
  assert [json.loads(l)["step"] for l in lines] == [1, 2]
  log.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])  # killed mid-write
  assert _train(run, steps=3) == 0
  steps = [json.loads(l)["step"] for l in log.read_text().splitlines()]
  assert steps == [1, 3] and log.read_text().endswith("\n")
  # A fallback to step 2 (step 3 unreadable) logs step 3 again: the old step 3 goes.
  assert progress.repair_jsonl(str(log), 2) == 1
  assert [json.loads(l)["step"] for l in log.read_text().splitlines()] == [1]


# ----------------------------------------------------------------------------------------
# Launch scripts: gin values are data, never code.

HOSTILE = "x'$(touch PWNED1)'\"`touch PWNED2`\"; touch PWNED3 #"
_STUB = """#!{python}
import os, subprocess, sys
name, args = os.path.basename(sys.argv[0]), sys.argv[1:]
def run(script, **env):
    sys.exit(subprocess.call(["bash", "-c", script], env={{**os.environ, **env}}))
if name == "gcloud" and "ssh" in args:  # a TPU worker runs --command
    run(args[args.index("--command") + 1])
if name == "sky" and args[:1] == ["launch"]:  # a node runs the task's run: block
    lines, block = open(args[-1]).read().splitlines(), None
    run_block = []
    for line in lines:
        if not line.startswith("  "):
            block = line.split(":")[0]
        elif block == "run":
            run_block.append(line[2:])
    run("\\n".join(run_block), SKYPILOT_NODE_IPS="127.0.0.1", SKYPILOT_NUM_NODES="1", SKYPILOT_NODE_RANK="0")
if name == "sbatch":
    run(open(args[-1]).read(), SLURM_JOB_NODELIST="n1", SLURM_NNODES="1", SLURM_PROCID="0")
if name == "srun":
    sys.exit(subprocess.call([a for a in args if not a.startswith("--")]))
if name == "scontrol":
    print("localhost")
if name in ("python3", "python"):  # the training command: record what it was given
    with open(os.environ["TRAIN_ARGV"], "a") as f:
        f.write("\\0".join(args) + "\\n")
sys.exit(0)
"""


def _stubs(tmp_path):
  bin_dir, home = tmp_path / "bin", tmp_path / "home"
  (home / "flan_jax_venv" / "bin").mkdir(parents=True)
  bin_dir.mkdir()
  stub = _STUB.format(python=sys.executable)
  for name in ("gcloud", "sky", "sbatch", "srun", "scontrol", "python3"):
    (bin_dir / name).write_text(stub)
    (bin_dir / name).chmod(0o755)
  (home / "flan_jax_venv" / "bin" / "python").write_text(stub)
  (home / "flan_jax_venv" / "bin" / "python").chmod(0o755)
  return bin_dir, home


@pytest.mark.parametrize("target, flags, model_dir", [
    ("tpu-vm", ["--topology=v4-8"], "gs://bucket/"),
    ("skypilot", ["--topology=h100x8"], "gs://bucket/"),
    ("slurm", ["--topology=h100x8"], "/shared/"),
])
def test_hostile_gin_values_never_execute_in_launch_scripts(target, flags, model_dir, tmp_path, capsys):
  from flan_jax.launch import launch_cli
  base = [f"--target={target}", "--gin_file=gin/recipes/quickstart.gin", *flags, f"--data_dir={tmp_path}"]
  for bad in ("x\nEOF\ntouch PWNED0 #", "x\rEOF", "x\x00y"):
    with pytest.raises(ValueError, match="--gin.MODEL_DIR: the value .* control character"):
      launch_cli.main([*base, f"--gin.MODEL_DIR={model_dir}{bad}", "--dry_run"])
  if target == "slurm":
    with pytest.raises(ValueError, match="--partition: .*control character"):
      launch_cli.main([*base, "--gin.MODEL_DIR=/shared/x", "--partition=gpu\nrm -rf ~", "--dry_run"])

  work = tmp_path / "work"
  work.mkdir()
  cwd = os.getcwd()
  os.chdir(work)  # the scripts write their files (sbatch, sky.yaml) here
  try:
    assert launch_cli.main([*base, f"--gin.MODEL_DIR={model_dir}{HOSTILE}", "--gin.TRAIN_STEPS=3",
                            "--dry_run"]) == 0
  finally:
    os.chdir(cwd)
  script = capsys.readouterr().out
  assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
  bin_dir, home = _stubs(tmp_path)
  script = script.replace(sys.executable, "true")  # the local wheel build is not what is tested
  record = tmp_path / "train_argv"
  env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(home),
         "TRAIN_ARGV": str(record)}
  done = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=120)
  assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
  pwned = [p for p in tmp_path.rglob("PWNED*")]
  assert not pwned, f"hostile value executed: {pwned}"
  argv = record.read_text().strip("\n").split("\0")
  assert any(a.startswith("--gin.MODEL_DIR=") and HOSTILE in a for a in argv), argv  # passed as data


# ----------------------------------------------------------------------------------------
# Converters write only into new or empty directories, all at once.


def _tree_bytes(root):
  out = {}
  for dirpath, _, files in os.walk(root):
    for f in files:
      p = os.path.join(dirpath, f)
      with open(p, "rb") as fh:
        out[os.path.relpath(p, root)] = fh.read()
  return out


def _convert(capsys, *argv):
  code = cli.main(["convert", *map(str, argv)])
  err = capsys.readouterr().err
  return code, err


def test_converters_never_write_over_user_files_runs_or_their_source(two_steps, tmp_path, capsys):
  hf_dir = tmp_path / "hf"
  assert _convert(capsys, "to-hf", two_steps, hf_dir)[0] == 0

  user = tmp_path / "user"
  user.mkdir()
  (user / "config.json").write_text('{"mine": true}\n')
  before = _tree_bytes(user)
  code, err = _convert(capsys, "to-hf", two_steps, user)
  assert code == 1 and "is not empty" in err and "--overwrite" in err and _tree_bytes(user) == before

  run = _copy(two_steps, tmp_path)
  before = _tree_bytes(run)
  code, err = _convert(capsys, "from-hf", hf_dir, run)
  assert code == 1 and "is a training run" in err and _tree_bytes(run) == before
  code, err = _convert(capsys, "from-hf", hf_dir, run, "--overwrite")
  assert code == 1 and "is a training run" in err and _tree_bytes(run) == before

  before = _tree_bytes(hf_dir)
  code, err = _convert(capsys, "from-hf", hf_dir, hf_dir)
  assert code == 1 and "is (or is inside, or holds) the source" in err and _tree_bytes(hf_dir) == before

  (hf_dir / "spiece.model").write_bytes((two_steps / "spiece.model").read_bytes())
  (hf_dir / "tokenizer_config.json").write_text('{"extra_ids": \n')
  out = tmp_path / "out"
  code, err = _convert(capsys, "from-hf", hf_dir, out)
  assert code == 1 and str(hf_dir / "tokenizer_config.json") in err and "not valid JSON" in err, err
  assert not out.exists() and not [p for p in os.listdir(tmp_path) if "partial" in p]

  (hf_dir / "tokenizer_config.json").write_text('{"extra_ids": 0}\n')
  assert _convert(capsys, "from-hf", hf_dir, user, "--overwrite")[0] == 0
  assert not (user / "config.json").exists() and (user / "model.json").exists()


# ----------------------------------------------------------------------------------------
# A preprocessed cache is checked whole.


@pytest.fixture(scope="module")
def small_cache(tmp_path_factory):
  from flan_jax.tasks import cache
  import flan_jax.tasks.embedded  # noqa: F401  (registers the variant)
  out = tmp_path_factory.mktemp("cache") / "cache"
  cache.build("embedded_arithmetic_zsnoopt", str(out), lengths={"inputs": 64, "targets": 16}, num_shards=2,
              say=lambda *a: None)
  return out


def _train_cached(run, cache_dir):
  return _train(run, "--gin.USE_CACHED_TASKS=True", f"--gin.train.seqio_cache_dirs=['{cache_dir}']",
                "--gin.MIXTURE_OR_TASK_NAME='embedded_arithmetic_zsnoopt'", steps=1)


@pytest.mark.slow
def test_a_cache_missing_a_shard_or_with_a_corrupt_one_is_named(small_cache, tmp_path, capsys):
  cache_dir = tmp_path / "cache"
  shutil.copytree(small_cache, cache_dir)
  shard = cache_dir / "embedded_arithmetic_zsnoopt" / "train.tfrecord-00001-of-00002"
  data = shard.read_bytes()
  shard.unlink()
  assert _train_cached(tmp_path / "run1", cache_dir) == 2
  err = capsys.readouterr().err
  assert f"{shard} is missing" in err and len(_one_line(err)) == 1, err

  flipped = bytearray(data)
  for i in range(len(flipped) // 2, len(flipped) // 2 + 100):
    flipped[i] ^= 0xFF
  shard.write_bytes(bytes(flipped))
  assert _train_cached(tmp_path / "run2", cache_dir) == 2
  err = capsys.readouterr().err
  assert f"{shard} is corrupt" in err and "Traceback" not in err and len(_one_line(err)) == 1, err

  shard.write_bytes(data[: len(data) // 2])
  assert _train_cached(tmp_path / "run3", cache_dir) == 2
  err = capsys.readouterr().err
  assert f"{shard} has {len(data) // 2} bytes, but it was written with {len(data)}" in err, err
  shard.write_bytes(data)
  assert _train_cached(tmp_path / "run4", cache_dir) == 0


# ----------------------------------------------------------------------------------------
# Bounded generation; one line instead of a traceback.


def _run_cli(*argv, stdin: bytes | None = None, timeout=120):
  """`flan-jax ARGV` in a fresh process: (exit code, stdout, stderr, seconds, peak RSS bytes)."""
  import tempfile
  import time
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
  # The command is started by a small python process, not by this (large) test worker: a child
  # forked from a process counts that process's resident pages in its own peak RSS.
  starter = ("import os, subprocess, sys; p = subprocess.Popen(sys.argv[2:]); _, s, u = os.wait4(p.pid, 0); "
             "open(sys.argv[1], 'w').write(str(u.ru_maxrss)); sys.exit(os.waitstatus_to_exitcode(s))")
  t0 = time.perf_counter()
  with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
      tempfile.NamedTemporaryFile("r") as peak:
    proc = subprocess.Popen([sys.executable, "-c", starter, peak.name, sys.executable, "-m", "flan_jax.cli", *argv],
                            stdout=out, stderr=err, stdin=subprocess.PIPE, cwd=REPO, env=env)
    if stdin is not None:
      proc.stdin.write(stdin)
    proc.stdin.close()
    code = proc.wait()
    seconds = time.perf_counter() - t0
    out.seek(0)
    err.seek(0)
    return (code, out.read().decode(errors="replace"), err.read().decode(errors="replace"), seconds,
            int(peak.read() or 0) * 1024)


@contextlib.contextmanager
def _importable(folder):
  """Task modules in FOLDER importable by the commands `_run_cli` starts."""
  old = os.environ.get("PYTHONPATH")
  os.environ["PYTHONPATH"] = f"{folder}{os.pathsep}{old or ''}"
  try:
    yield
  finally:
    if old is None:
      del os.environ["PYTHONPATH"]
    else:
      os.environ["PYTHONPATH"] = old


def _only_our_line(err: str, *words):
  lines = _one_line(err)
  assert len(lines) == 1 and "Traceback" not in err, err
  for w in words:
    assert w in lines[0], lines[0]


@pytest.mark.slow
def test_generate_refuses_unbounded_requests_at_once(two_steps):
  code, _, err, seconds, rss = _run_cli("generate", "--checkpoint", str(two_steps), "--max_decode_len",
                                        "1000000000", "hello")
  assert code == 2 and seconds < 60 and rss < 4 * 2**30
  _only_our_line(err, "--max_decode_len=1000000000", "4096")
  code, _, err, seconds, rss = _run_cli("generate", "--checkpoint", str(two_steps), "word " * 20_000)
  assert code == 2 and seconds < 60 and rss < 4 * 2**30
  _only_our_line(err, "--max_input_length is 2048")


@pytest.mark.slow
def test_malformed_inputs_are_one_line_naming_what_is_wrong(two_steps, tmp_path):
  code, _, err, *_ = _run_cli("generate", "--checkpoint", str(two_steps), b"\xff\xfe".decode("utf-8", "surrogateescape"))
  assert code == 2
  _only_our_line(err, "prompt 1 is not valid UTF-8")
  code, _, err, *_ = _run_cli("generate", "--checkpoint", str(two_steps), "--interactive", stdin=b"ok\n\xff\xfe\n")
  assert code == 2
  _only_our_line(err, "stdin line 2 is not valid UTF-8")

  for metadata, shown in (({}, "'batches_taken' is None"), ({"batches_taken": -5}, "'batches_taken' is -5")):
    run = tmp_path / f"run{len(shown)}"
    shutil.copytree(two_steps, run)
    (run / "checkpoints" / "2" / "data" / "metadata").write_text(json.dumps(metadata))
    code, _, err, *_ = _run_cli("train", *QUICK, f"--gin.MODEL_DIR={run}", "--gin.TRAIN_STEPS=3")
    assert code != 0
    _only_our_line(err, str(run / "checkpoints" / "2" / "data" / "metadata"), shown)

  rows = [json.dumps({"question": f"q{i}", "answer": str(i)}) for i in range(200)]
  rows[128] = '{"question": "broken'
  (tmp_path / "validation.jsonl").write_text("\n".join(rows) + "\n")
  (tmp_path / "bad_tasks.py").write_text(
      "from flan_jax.tasks import api, templates\n"
      f"api.register_flan_task('bad_rows', {{'validation': {str(tmp_path / 'validation.jsonl')!r}}}, "
      "[templates.Template('{question}', '{answer}')], formats=('zsnoopt',), splits=('validation',))\n")
  with _importable(tmp_path):
    code, _, err, *_ = _run_cli("infer", "--gin_file=gin/runs/infer.gin", f"--gin.CHECKPOINT_PATH={two_steps}",
                                "--gin.MIXTURE_OR_TASK_NAME='bad_rows_zsnoopt'", f"--gin.INFER_OUTPUT_DIR={tmp_path / 'o'}",
                                "--gin.TASK_MODULES=['bad_tasks']", "--gin.infer.split='validation'")
  assert code != 0
  _only_our_line(err, f"{tmp_path / 'validation.jsonl'}:129", "not valid JSON")

  a_file = tmp_path / "a_file"
  a_file.write_text("x")
  for data_dir, shown in ((a_file, "is a file, not a directory"), (a_file / "sub", "cannot be written")):
    code, _, err, *_ = _run_cli("data", "prepare", "mgsm", f"--data_dir={data_dir}")
    assert code != 0
    _only_our_line(err, str(data_dir), shown)


@pytest.mark.slow
def test_commands_print_no_libtpu_start_up_lines_on_a_machine_without_tpus(two_steps):
  pytest.importorskip("libtpu", reason="needs the tpu extra (pip install -e '.[tpu]'), which .ci/run installs")
  env = {k: v for k, v in os.environ.items() if not k.startswith(("TPU_", "JAX_PLATFORMS"))}
  env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
  for argv in (["generate", "--checkpoint", str(two_steps), "--max_decode_len", "2", "hello"], ["train", "--help"]):
    done = subprocess.run([sys.executable, "-m", "flan_jax.cli", *argv], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    for noise in ("host bounds", "TPU_WORKER_HOSTNAMES", "Source Location Trace", "libtpu", "TPU accelerator"):
      assert noise not in done.stderr + done.stdout, (argv, done.stderr[-2000:])


def test_files_the_run_owns_are_never_written_through_a_link(tmp_path):
  victim = tmp_path / "victim.txt"
  victim.write_text("keep me\n")
  run = tmp_path / "run"
  run.mkdir()
  os.symlink(victim, run / "train_metrics.jsonl")
  with pytest.raises(ValueError, match="train_metrics.jsonl is a symbolic link"):
    progress.MetricsLogger(str(run), 10, 1.0, None)
  os.symlink(victim, run / "config.gin")
  run_guard.write_owned_file(str(run / "config.gin"), "TRAIN_STEPS = 3\n")
  assert victim.read_text() == "keep me\n" and not os.path.islink(run / "config.gin")
  assert (run / "config.gin").read_text() == "TRAIN_STEPS = 3\n"


@pytest.mark.slow
def test_a_task_with_no_example_at_the_runs_lengths_is_named_not_a_stopiteration(tmp_path):
  rows = [{"question": f"what is {i} plus {i} when counted slowly?", "answer": str(2 * i)} for i in range(50)]
  (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
  (tmp_path / "fs_only_tasks.py").write_text(
      "from flan_jax.tasks import api, templates\n"
      f"api.register_flan_task('fs_only', {{'train': {str(tmp_path / 'train.jsonl')!r}}}, "
      "[templates.Template('{question}', '{answer}')], formats=('fsnoopt',), splits=('train',))\n")
  with _importable(tmp_path):
    code, _, err, *_ = _run_cli("train", *QUICK, f"--gin.MODEL_DIR={tmp_path / 'run'}", "--gin.TRAIN_STEPS=3",
                                "--gin.TASK_FEATURE_LENGTHS={'inputs': 16, 'targets': 8}",
                                "--gin.TASK_MODULES=['fs_only_tasks']", "--gin.MIXTURE_OR_TASK_NAME='fs_only_fsnoopt'")
  assert code == 2
  _only_our_line(err, "the input of 'fs_only_fsnoopt' ended after 0 batches", "TASK_FEATURE_LENGTHS")
