from pathlib import Path

import pytest

from tests.paths import EXAMPLES

ALEX = EXAMPLES / "AlexNet_Simba"
INPUTS = ALEX / "inputs"
ARCH = INPUTS / "simba_like" / "arch" / "simba_like.yaml"
COMPONENTS = INPUTS / "simba_like" / "arch" / "components"
CONSTRAINTS = INPUTS / "simba_like" / "constraints"
MAPPER = INPUTS / "simba_like" / "mapper" / "mapper.yaml"
WORKLOAD = INPUTS / "AlexNet"
ERT = ALEX / "timeloop-samples" / "SLC_Layer2_Tile27" / "timeloop-mapper.ERT.yaml"
FAKE = "tests.benchmark.fake_backend:make"

# Three convs on a 6 x 8 (h x w) plane; c2 and c3 have the same dimensions (their entries are shared).
TINY_NET = """\
network: tiny
input: [8, 10]
layers:
  - {name: c1, type: conv, C: 3, M: 8, P: 8, Q: 6, R: 3, S: 3}
  - {name: c2, type: conv, C: 8, M: 8, P: 8, Q: 6, R: 3, S: 3, pad: 1}
  - {name: c3, type: conv, C: 8, M: 8, P: 8, Q: 6, R: 3, S: 3, pad: 1}
"""


@pytest.fixture
def tiny_net(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.yaml"
    p.write_text(TINY_NET)
    return p


@pytest.fixture(autouse=True)
def _no_fake_env(monkeypatch: pytest.MonkeyPatch):
    """The fake backend reads these when made; tests set them explicitly."""
    for var in ("FAKE_DELAY", "FAKE_WEIGHT_CAPACITY", "FAKE_FAIL", "DEEPFRACK_CACHE"):
        monkeypatch.delenv(var, raising=False)
