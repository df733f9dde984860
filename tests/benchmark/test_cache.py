import dataclasses
import sqlite3
from pathlib import Path

import pytest

from deepfrack.benchmark.cache import (
    ResultCache,
    canonical_json,
    content_hash,
    job_key,
    record_from_json,
    record_to_json,
    to_plain,
)
from deepfrack.benchmark.jobs import make_job
from deepfrack.benchmark.outcome import Outcome
from deepfrack.cost.table import CostRecord
from deepfrack.errors import InputError
from deepfrack.residency import Variant
from deepfrack.workload.layer import Layer, Network

CONV = Layer("conv", C=16, M=32, P=10, Q=10, R=3, S=3, pad=(1, 1, 1, 1))
NET = Network.chain("n", [CONV])
FP = "f" * 64


def _key(layer: Layer = CONV, variant="WCC", h=4, w=5, fp=FP) -> str:
    return job_key(make_job(Network.chain("n", [layer]), 0, variant, h, w), fp)


def test_key_depends_on_the_problem_not_on_names_or_padding():
    base = _key()
    assert base == _key()  # stable
    assert len(base) == 64
    assert _key(dataclasses.replace(CONV, name="other", pad=(0, 0, 0, 0))) == base
    for changed in (
        _key(dataclasses.replace(CONV, C=17)),
        _key(dataclasses.replace(CONV, Wstride=2)),
        _key(dataclasses.replace(CONV, R=5)),
        _key(variant="EWCC"),
        _key(h=5, w=4),
        _key(fp="e" * 64),
    ):
        assert changed != base


def test_canonical_json_ignores_key_order():
    assert canonical_json({"a": 1, "b": [1, {"y": 2, "x": 3}]}) == canonical_json(
        {"b": [1, {"x": 3, "y": 2}], "a": 1}
    )
    assert canonical_json({"s": {3, 1, 2}}) == '{"s":[1,2,3]}'
    assert content_hash(Variant.SLC) == content_hash("SLC")


def test_round_trip_and_persistence(tmp_path: Path):
    job = make_job(NET, 0, Variant.Start, 3, 3)
    rec = CostRecord(
        energy_pJ=1234.5678901234567,
        cycles=99.0,
        macs=41472,
        level_energy_pJ={"LMAC": 1000.25, "DRAM": 234.3178901234567},
        accesses={"DRAM": {"reads": {"Weights": 4608}}},
        mapping=[{"target": "DRAM", "type": "temporal", "factors": {"C": 2}, "permutation": "CMRSNPQ"}],
    )
    path = tmp_path / "c.sqlite"
    with ResultCache(path) as cache:
        stored = cache.put_many(
            [
                ("k1", job, Outcome.ok(rec)),
                ("k2", job, Outcome.infeasible("no mapping fits")),
                ("k3", job, Outcome.error("crashed")),  # errors are retried, never cached
            ]
        )
        assert stored == 2
    with ResultCache(path) as cache:
        assert len(cache) == 2
        got = cache.get_many(["k1", "k2", "k3", "missing"])
        assert got == {"k1": Outcome.ok(rec), "k2": Outcome.infeasible("no mapping fits")}
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


def test_record_json_of_plain_and_of_other_data():
    """Plain records are written as they are, others (enums, tuples, non-finite counts) through
    to_plain: both read back as plain data."""
    plain = CostRecord(
        energy_pJ=12.5,
        cycles=3.0,
        macs=7,
        level_energy_pJ={"DRAM": 10.0, "LMAC": 2.5},
        accesses={"DRAM": {"reads": {"Inputs": 4}, "utilized_instances": {"Inputs": 1}}},
        mapping=[{"target": "DRAM", "type": "temporal", "factors": "C=2 M=1", "permutation": "CM"}],
    )
    text = record_to_json(plain)
    assert record_from_json(text) == plain
    odd = dataclasses.replace(
        plain,
        accesses={"DRAM": {"reads": {"Inputs": float("inf")}}},
        mapping=[{"target": "DRAM", "type": Variant.SLC, "factors": ("C", 2)}],
    )
    back = record_from_json(record_to_json(odd))
    assert back.accesses == to_plain(odd.accesses) == {"DRAM": {"reads": {"Inputs": "inf"}}}
    assert back.mapping == [{"target": "DRAM", "type": "SLC", "factors": ["C", 2]}]


def test_many_keys_are_fetched_in_chunks(tmp_path: Path):
    job = make_job(NET, 0, Variant.SLC, 1, 1)
    with ResultCache(tmp_path / "c.sqlite") as cache:
        cache.put_many((f"k{i}", job, Outcome.ok(CostRecord(energy_pJ=float(i)))) for i in range(1200))
        got = cache.get_many(f"k{i}" for i in range(0, 1300, 1))
        assert len(got) == 1200 and got["k1199"].record.energy_pJ == 1199.0


def test_a_file_that_is_not_a_cache_is_an_input_error(tmp_path: Path):
    bad = tmp_path / "notes.sqlite"
    bad.write_text("this is not a database\n" * 100)
    with pytest.raises(InputError) as err:
        ResultCache(bad)
    assert "notes.sqlite" in str(err.value) and "--cache" in str(err.value)
