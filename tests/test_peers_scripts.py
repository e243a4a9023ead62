"""The peer-comparison scripts (benchmarks/peers/) without the peers' checkouts: the table is
made from figure files, the MaxText config keeps a single key/value head unsharded, and
the T5X shims stand in for exactly the imports they name."""
import importlib.util
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PEERS = ROOT / "benchmarks" / "peers"


def _load(name):
  sys.path.insert(0, str(PEERS))
  spec = importlib.util.spec_from_file_location(name, PEERS / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _figures(peak, step, bound="hbm"):
  roofline = {"compute": step / 2, "hbm": step / 2, "ici": step / 2}
  roofline[bound] = step
  return {"peak_gib": peak, "hbm_traffic_gib": 100.0, "collective_traffic_gib": 10.0, "roofline_s": dict(
      roofline, step=step), "mfu": 0.5, "top_traffic": [["layers/mlp/wo/dot_general", 12.5]]}


def test_the_peers_table_sets_each_row_beside_its_peers():
  table = _load("make_peers_table")
  flan = {"xxl": _figures(2.0, 0.5), "62b": _figures(15.0, 1.8, "compute"),
          "62b_full": _figures(12.0, 2.2, "compute"), "8b": _figures(6.0, 0.6, "compute")}
  peers = {"t5x_full": _figures(8.0, 1.0), "maxtext_flan_palm_62b_adamw": _figures(20.0, 2.4, "ici"),
           "maxtext_flan_palm_62b_sgd": _figures(12.0, 2.4, "ici"), "maxtext_flan_palm_8b_sgd": _figures(7.5, 0.6)}
  text = table.markdown(flan, peers)
  assert "0.25× memory, **0.50× step** (vs T5X remat full)" in text
  assert "0.75× MaxText AdamW's memory, **0.75× step**" in text
  assert "1.00× MaxText SGD's memory, 0.92× step" in text
  assert "not measured" in text  # rows without figures say so
  assert "cc342d4" in text and "e591f30" in text and "allow_split_physical_axes=True" in text


def test_maxtext_config_keeps_one_key_value_head_unsharded(tmp_path):
  maxtext = _load("maxtext_compile")
  base = tmp_path / "base.yml"
  base.write_text("logical_axis_rules: [\n"
                  "                      ['activation_kv_heads', ['tensor', 'tensor_sequence']],\n"
                  "                      ['heads', ['tensor', 'tensor_sequence', 'autoregressive']],\n"
                  "                      ['kv_heads', ['tensor', 'tensor_sequence', 'autoregressive']],\n"
                  "                    ]\n")
  out = maxtext._base_config_one_kv_head(base, tmp_path).read_text()
  assert "['kv_heads', []]," in out and "['activation_kv_heads', []]," in out
  assert "['heads', ['tensor', 'tensor_sequence', 'autoregressive']]," in out  # query heads still split


def test_t5x_shims_stand_in_for_airio_and_the_moved_partition_spec(monkeypatch):
  t5x = _load("t5x_compile")
  for name in ("airio", "airio.core"):
    monkeypatch.delitem(sys.modules, name, raising=False)
  t5x._shims()
  import jax
  import jax.experimental.pjit as pjit_module
  assert pjit_module.PartitionSpec is jax.sharding.PartitionSpec
  core = sys.modules["airio.core"]
  assert {"Task", "Mixture", "AirIODatasetIterator", "DatasetProviderBase"} <= set(dir(core))
  for name in ("airio", "airio.core"):
    sys.modules.pop(name, None)
