from pathlib import Path

import pytest

from deepfrack.benchmark.mapper_config import DEFAULT_METRICS, load_mapper_settings, parse_mapper_doc
from deepfrack.errors import InputError
from tests.benchmark.conftest import MAPPER


def test_reference_mapper_yaml():
    s = load_mapper_settings(MAPPER)
    assert s.optimization_metrics == ("delay", "energy")
    assert s.options == {
        "live-status": False,
        "num-threads": 8,
        "timeout": 15000,
        "victory-condition": 3000,
        "algorithm": "random-pruned",
        "max-permutations-per-if-visit": 16,
    }
    assert s.ignored == (
        "algorithm",
        "live-status",
        "max-permutations-per-if-visit",
        "num-threads",
        "timeout",
        "victory-condition",
    )
    assert s.source == str(MAPPER)


def test_defaults_and_single_metric():
    assert load_mapper_settings(None).optimization_metrics == DEFAULT_METRICS
    assert parse_mapper_doc({"mapper": {"optimization-metric": "edp"}}).optimization_metrics == ("edp",)
    # unknown keys are kept for Timeloop (newer versions add options)
    assert parse_mapper_doc({"mapper": {"filter-revisits": True}}).options == {"filter-revisits": True}


@pytest.mark.parametrize(
    "text, field",
    [
        ("mapper:\n  optimization-metrics: [delay, joules]\n", "mapper.optimization-metrics"),
        ("mapper:\n  optimization-metrics: delay\n", "mapper.optimization-metrics"),
        ("mapper:\n  optimization-metrics: []\n", "mapper.optimization-metrics"),
        ("mapper:\n  num-threads: -2\n", "mapper.num-threads"),
        ("mapper:\n  timeout: fast\n", "mapper.timeout"),
        ("mapper:\n  algorithm: genetic\n", "mapper.algorithm"),
        ("mapper:\n  live-status: 3\n", "mapper.live-status"),
        ("mapper: [1, 2]\n", "mapper"),
        ("mapper:\n  optimization-metrics: [delay\n", "line 3, column 1"),
    ],
)
def test_broken_mapper_yaml_names_the_field(tmp_path: Path, text: str, field: str):
    p = tmp_path / "mapper.yaml"
    p.write_text(text)
    with pytest.raises(InputError) as err:
        load_mapper_settings(p)
    assert err.value.field == field
    assert str(err.value).startswith(str(p))
    assert "\n" not in str(err.value)
