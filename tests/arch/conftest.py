import pytest

from tests.paths import EXAMPLES, EXERCISES

SIMBA = EXAMPLES / "AlexNet_Simba/inputs/simba_like"
SYSTOLIC = EXAMPLES / "GAN_SimbaSystolic/inputs/SystolicSimba/SIMBA"
GEMMINI = EXAMPLES / "GAN_Gemmini/inputs/FP32_Gemmini"
V04_DESIGNS = ("eyeriss_like", "simba_like", "simple_output_stationary", "simple_weight_stationary")


@pytest.fixture(scope="session")
def simba():
    from deepfrack.arch import load_architecture

    return load_architecture(SIMBA / "arch/simba_like.yaml", SIMBA / "arch/components")


@pytest.fixture(scope="session")
def gemmini():
    from deepfrack.arch import load_architecture

    return load_architecture(GEMMINI / "arch/gemini_like.yaml")


def v04_paths(design: str):
    return (EXERCISES / design / "arch.yaml", EXERCISES / "_components")
