#!/usr/bin/env bash
# Acceptance check for the README's two commands on a fresh machine: a new virtual
# environment, the README's install command exactly (torch 2.13.0, then the project with
# its test, hf and data extras, both pinned by constraints.txt), then the quickstart. Prints the seconds each took, the first and last logged loss and
# whether a checkpoint exists. Needs the package index (PyPI).
#   bash scripts/fresh_install_check.sh [WORKDIR]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d)}"
python3 -m venv "$work/venv"
source "$work/venv/bin/activate"
start=$(date +%s)
pip install -q --no-cache-dir -c "$repo/constraints.txt" torch==2.13.0 \
  && pip install -q --no-cache-dir -c "$repo/constraints.txt" -e "$repo[test,hf,data]"
installed=$(date +%s)
cd "$work"
flan-jax train --gin_file=gin/recipes/quickstart.gin --gin.MODEL_DIR="$work/quickstart" | tee "$work/quickstart.log"
done_=$(date +%s)
python - "$work/quickstart" <<'PY'
import json, os, sys
rows = [json.loads(l) for l in open(os.path.join(sys.argv[1], "train_metrics.jsonl"))]
first, last = rows[0]["loss"], rows[-1]["loss"]
ckpts = sorted(os.listdir(os.path.join(sys.argv[1], "checkpoints")))
print(f"first loss {first:.4f}, last loss {last:.4f} ({100 * last / first:.1f}% of first); checkpoints {ckpts}")
assert last < 0.6 * first and ckpts
PY
echo "install $((installed - start)) s, quickstart $((done_ - installed)) s, total $((done_ - start)) s"
