"""Every test process sees 8 virtual CPU devices, so sharding tests run anywhere."""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # keep TensorFlow (seqio) off any GPU

import gin  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_gin_config():
  """Entry points parse (and lock) gin's global config; each test starts from a clean one."""
  gin.clear_config()
  yield
  gin.clear_config()


def pytest_configure(config):
  """The test tiers: `-m "not slow"` is the fast tier (units and equivalences, in-process);
  `slow` marks tests that start training processes or take more than a few seconds here."""
  config.addinivalue_line("markers", "slow: a subprocess training or a test of more than ~4 s on 2 cores; "
                          "the fast tier is `pytest -m 'not slow'`")
