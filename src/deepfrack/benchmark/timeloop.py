"""The Timeloop backend: ``timeloop-mapper`` run once per entry, as the original DeepFrack benchmarker did.

Per job, in a fresh temporary folder: the architecture and its component classes, the problem (the
layer's Timeloop CNN-layer problem with ``P = tile_w``, ``Q = tile_h``), the variant's constraints plus the
shared (mapspace) constraints, the mapper settings (``live-status`` forced off: no curses UI) and the ERT
when one is given; then ``timeloop-mapper <files>`` in that folder, and ``timeloop-mapper.stats.txt`` and
``timeloop-mapper.map.yaml`` (``map.txt`` when an older Timeloop wrote no ``map.yaml``) are parsed into a
CostRecord: total and per-level energy, cycles, MACs, per-level access counts and the mapping.

Timeloop architectures v0.3 (``subtree``/``local``, the original's format) only: v0.4 inputs need
Timeloop's Python front end. The problem written is Timeloop's CNN-layer, so conv and fc layers only.

The parsers read the text Timeloop prints (``Level N`` blocks of SPECS/MAPPING/STATS, then Networks and
the summary); numbers are as printed (energies rounded to 0.01 pJ). Stats counts are **per instance**,
as Timeloop prints them, with the utilized instances alongside.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deepfrack.arch.yamlio import Tagged
from deepfrack.benchmark import energy_gaps
from deepfrack.benchmark.backend import BackendUnavailable
from deepfrack.benchmark.cache import content_hash
from deepfrack.benchmark.inputs import BenchmarkInputs
from deepfrack.benchmark.jobs import Job
from deepfrack.benchmark.outcome import Outcome
from deepfrack.benchmark.provenance import code_digest
from deepfrack.cost.model import default_rules
from deepfrack.cost.table import CostRecord
from deepfrack.dims import DIMS, TENSORS
from deepfrack.errors import InputError
from deepfrack.residency import Variant
from deepfrack.workload.layer import Layer

BINARY = "timeloop-mapper"
OUT_PREFIX = "timeloop-mapper"
#: Timeloop's CNN-layer dimensions, in its problem-shape order
DATASPACES: tuple[str, ...] = TENSORS  # Weights, Inputs, Outputs


class TimeloopParseError(ValueError):
    """A Timeloop output file that does not read as expected."""


# ============================================================================================= #
# stats.txt
# ============================================================================================= #
@dataclass(frozen=True)
class DataspaceStats:
    """One dataspace at one storage level; counts per instance, energies in pJ."""

    reads: int
    fills: int
    updates: int
    temporal_reductions: int
    utilized_instances: int
    utilized_capacity: int
    partition_size: int
    energy_per_scalar_access_pJ: float
    energy_pJ: float  # Energy (total)
    reduction_energy_pJ: float = 0.0  # Temporal Reduction Energy (total)
    address_energy_pJ: float = 0.0  # Address Generation Energy (total)


@dataclass(frozen=True)
class LevelStats:
    """One storage level. energy_pJ = its dataspaces' energy + temporal-reduction + address-generation
    energy + leakage (v0.4 prints leakage; v0.3 has none)."""

    level: int
    name: str
    instances: int
    size_words: int | None
    cycles: int
    energy_pJ: float
    dataspaces: Mapping[str, DataspaceStats]
    leakage_pJ: float = 0.0


@dataclass(frozen=True)
class ArithmeticStats:
    name: str
    instances: int
    utilized_instances: int
    computes: int
    cycles: int
    energy_pJ: float


@dataclass(frozen=True)
class TimeloopStats:
    """A parsed ``timeloop-mapper.stats.txt``. ``levels`` inner to outer (Timeloop's Level 1..n)."""

    arithmetic: ArithmeticStats
    levels: tuple[LevelStats, ...]
    networks_energy_pJ: float
    cycles: int
    computes: int
    energy_uJ_summary: float
    utilization: float

    @property
    def energy_pJ(self) -> float:
        """Arithmetic + every level + networks: the sum of the printed terms."""
        return self.arithmetic.energy_pJ + sum(lv.energy_pJ for lv in self.levels) + self.networks_energy_pJ

    def level(self, name: str) -> LevelStats:
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise KeyError(name)


_KV = re.compile(r"^\s*([^:]+?)\s*:\s*(.*?)\s*$")


def _num(text: str) -> float:
    m = re.match(r"^\s*(-?[0-9.]+(?:[eE][-+]?\d+)?)", text)
    if not m:
        raise TimeloopParseError(f"expected a number, got {text!r}")
    return float(m.group(1))


def _int(text: str) -> int:
    return round(_num(text))


def _split_sections(lines: list[str]) -> tuple[list[list[str]], list[str], list[str]]:
    """(level blocks, networks lines, summary lines)."""
    levels: list[list[str]] = []
    networks: list[str] = []
    summary: list[str] = []
    mode = "head"
    for i, line in enumerate(lines):
        stripped = line.strip()
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        is_header = bool(nxt) and set(nxt) == {"-"}
        if is_header and re.fullmatch(r"Level \d+", stripped):
            levels.append([line])
            mode = "level"
            continue
        if is_header and stripped == "Networks":
            mode = "networks"
            continue
        if is_header and stripped in ("Operational Intensity Stats",):
            mode = "skip"
            continue
        if is_header and stripped == "Summary Stats":
            mode = "summary"
            continue
        if mode == "level":
            levels[-1].append(line)
        elif mode == "networks":
            networks.append(line)
        elif mode == "summary":
            summary.append(line)
    return levels, networks, summary


def _parse_level(block: list[str]) -> ArithmeticStats | LevelStats:
    level = int(block[0].split()[1])
    name = None
    specs: dict[str, str] = {}
    stats: dict[str, str] = {}
    dataspaces: dict[str, dict[str, str]] = {}
    section = ""
    current: dict[str, str] | None = None
    for line in block[1:]:
        s = line.strip()
        if not s or set(s) == {"-"}:
            continue
        m = re.fullmatch(r"=== (.+) ===", s)
        if m:
            name = m.group(1)
            continue
        if s in ("SPECS", "MAPPING", "STATS"):
            section = s
            current = None
            continue
        if section == "STATS" and s.endswith(":") and ":" not in s[:-1]:
            current = dataspaces.setdefault(s[:-1], {})
            continue
        kv = _KV.match(line)
        if not kv:
            continue
        key, value = kv.group(1), kv.group(2)
        if section == "SPECS":
            specs[key] = value
        elif section == "STATS":
            (current if current is not None else stats)[key] = value
    if name is None:
        raise TimeloopParseError(f"Level {level}: no '=== name ===' line")
    if "Computes (total)" in stats:  # the arithmetic level
        return ArithmeticStats(
            name=name,
            instances=_int(specs.get("Instances", "0")),
            utilized_instances=_int(stats.get("Utilized instances", "0")),
            computes=_int(stats["Computes (total)"]),
            cycles=_int(stats.get("Cycles", "0")),
            energy_pJ=_num(stats.get("Energy (total)", "0")),
        )
    ds_stats: dict[str, DataspaceStats] = {}
    for ds, kv_ in dataspaces.items():
        try:
            ds_stats[ds] = DataspaceStats(
                reads=_int(kv_["Scalar reads (per-instance)"]),
                fills=_int(kv_["Scalar fills (per-instance)"]),
                updates=_int(kv_["Scalar updates (per-instance)"]),
                temporal_reductions=_int(kv_.get("Temporal reductions (per-instance)", "0")),
                utilized_instances=_int(kv_.get("Utilized instances (max)", "0")),
                utilized_capacity=_int(kv_.get("Utilized capacity", "0")),
                partition_size=_int(kv_.get("Partition size", "0")),
                energy_per_scalar_access_pJ=_num(kv_.get("Energy (per-scalar-access)", "0")),
                energy_pJ=_num(kv_["Energy (total)"]),
                reduction_energy_pJ=_num(kv_.get("Temporal Reduction Energy (total)", "0")),
                address_energy_pJ=_num(kv_.get("Address Generation Energy (total)", "0")),
            )
        except KeyError as exc:
            raise TimeloopParseError(f"level {name}, dataspace {ds}: no {exc.args[0]!r} line") from None
    leakage = _num(specs["Leakage energy (total)"]) if "Leakage energy (total)" in specs else 0.0
    size = specs.get("Size", "-").strip()
    energy = (
        sum(d.energy_pJ + d.reduction_energy_pJ + d.address_energy_pJ for d in ds_stats.values()) + leakage
    )
    return LevelStats(
        level=level,
        name=name,
        instances=_int(specs.get("Instances", "1")),
        size_words=None if size in ("-", "") else _int(size),
        cycles=_int(stats.get("Cycles", "0")),
        energy_pJ=round(energy, 6),
        dataspaces=ds_stats,
        leakage_pJ=leakage,
    )


def parse_stats(text: str) -> TimeloopStats:
    """Parse the text of ``timeloop-mapper.stats.txt`` (Timeloop v0.3 and v0.4 output)."""
    lines = text.splitlines()
    blocks, network_lines, summary = _split_sections(lines)
    if not blocks:
        raise TimeloopParseError("no 'Level N' blocks: not a timeloop-mapper stats file")
    parsed = [_parse_level(b) for b in blocks]
    ariths = [p for p in parsed if isinstance(p, ArithmeticStats)]
    if len(ariths) != 1:
        raise TimeloopParseError(f"expected one arithmetic level, found {len(ariths)}")
    levels = tuple(p for p in parsed if isinstance(p, LevelStats))
    net_energy = 0.0
    for line in network_lines:
        kv = _KV.match(line)
        if kv and kv.group(1) in (
            "Energy (total)",
            "Link transfer energy (total)",
            "Spatial Reduction Energy (total)",
        ):
            net_energy += _num(kv.group(2))
    info: dict[str, str] = {}
    for line in summary:
        m = re.match(r"^\s*([A-Za-z/() @0-9]+?)\s*[:=]\s*(.+)$", line)
        if m:
            info.setdefault(m.group(1).strip(), m.group(2).strip())
    arith = ariths[0]
    if "Energy" not in info:
        raise TimeloopParseError("no 'Energy: X uJ' line in the summary")
    util_text = info.get("Utilization", "0")
    utilization = _num(util_text) / (100.0 if util_text.endswith("%") else 1.0)
    return TimeloopStats(
        arithmetic=arith,
        levels=levels,
        networks_energy_pJ=round(net_energy, 6),
        cycles=_int(info["Cycles"])
        if "Cycles" in info
        else max([arith.cycles] + [lv.cycles for lv in levels]),
        computes=_int(info["Computes"]) if "Computes" in info else arith.computes,
        energy_uJ_summary=_num(info["Energy"]),
        utilization=utilization,
    )


# ============================================================================================= #
# map.yaml / map.txt -> mapping directives (Timeloop map.yaml terms)
# ============================================================================================= #
def parse_factors(text: str | Mapping[str, Any]) -> dict[str, int]:
    """``"C1 M8 R1"`` or ``"C=1 M=8"`` -> {"C": 1, "M": 8, "R": 1}."""
    if isinstance(text, Mapping):
        return {str(k): int(v) for k, v in text.items()}
    out: dict[str, int] = {}
    for tok in str(text).split():
        m = re.fullmatch(r"([A-Za-z_]+?)(?:=|<=|>=)?(\d+)", tok)
        if not m:
            raise TimeloopParseError(f"bad factor {tok!r} in {text!r}")
        out[m.group(1)] = int(m.group(2))
    return out


def parse_map_yaml(doc: Any) -> list[dict[str, Any]]:
    """The directives of a ``timeloop-mapper.map.yaml`` (parsed YAML or its text), in file order:
    ``{target, type: datatype, keep, bypass}`` or ``{target, type: temporal|spatial, factors: {dim: n},
    permutation (innermost first)[, split]}``."""
    if isinstance(doc, str):
        doc = yaml.safe_load(doc)
    items = doc.get("mapping") if isinstance(doc, Mapping) else doc
    if not isinstance(items, list):
        raise TimeloopParseError("expected mapping: [directives]")
    out: list[dict[str, Any]] = []
    for d in items:
        kind = d.get("type")
        if kind in ("datatype", "bypass"):
            out.append(
                {
                    "target": d["target"],
                    "type": "datatype",
                    "keep": list(d.get("keep") or []),
                    "bypass": list(d.get("bypass") or []),
                }
            )
        elif kind in ("temporal", "spatial"):
            row: dict[str, Any] = {
                "target": d["target"],
                "type": kind,
                "factors": parse_factors(d.get("factors", "")),
                "permutation": str(d.get("permutation", "")),
            }
            if kind == "spatial":
                row["split"] = int(d.get("split", len(row["permutation"])))
            out.append(row)
        else:
            raise TimeloopParseError(f"unknown directive type {kind!r}")
    return out


_LEVEL_LINE = re.compile(r"^(\S+) \[(.*)\]\s*$")
_LOOP_LINE = re.compile(r"for (\w+) in \[0:(\d+)(?:,\d+)?\)\s*(\(Spatial-([XY])\))?")


def parse_map_txt(
    text: str, dims: Sequence[str] = DIMS, dataspaces: Sequence[str] = DATASPACES
) -> list[dict[str, Any]]:
    """The directives of a ``timeloop-mapper.map.txt`` loop nest, in the order Timeloop writes map.yaml:
    datatype per level (inner to outer), then per level (inner to outer) its spatial directive (when it
    has spatial loops) and its temporal one. Permutations list the loops innermost first, then the
    unused dimensions in problem order; a spatial split counts the X loops."""
    levels: list[dict[str, Any]] = []
    for line in text.splitlines():
        s = line.strip()
        m = _LEVEL_LINE.match(s)
        if m:
            keep = [ds for ds in dataspaces if re.search(rf"\b{ds}:", m.group(2))]
            levels.append({"name": m.group(1), "keep": keep, "loops": []})
            continue
        lm = _LOOP_LINE.search(s)
        if lm and levels:
            levels[-1]["loops"].append((lm.group(1), int(lm.group(2)), lm.group(4)))
    if not levels:
        raise TimeloopParseError("no 'Level [ ... ]' lines: not a timeloop-mapper map.txt")
    inner_first = list(reversed(levels))
    out: list[dict[str, Any]] = []
    for lv in inner_first:
        out.append(
            {
                "target": lv["name"],
                "type": "datatype",
                "keep": lv["keep"],
                "bypass": [d for d in dataspaces if d not in lv["keep"]],
            }
        )

    def perm(order: list[str]) -> str:
        return "".join(order + [d for d in dims if d not in order])

    for lv in inner_first:
        loops = [lp for lp in lv["loops"] if lp[1] > 1]
        spatial = [lp for lp in loops if lp[2]]
        temporal = [lp for lp in loops if not lp[2]]
        if spatial:
            xs = [d for d, _, axis in reversed(spatial) if axis == "X"]
            ys = [d for d, _, axis in reversed(spatial) if axis == "Y"]
            factors = {d: 1 for d in dims}
            for d, n, _ in spatial:
                factors[d] *= n
            out.append(
                {
                    "target": lv["name"],
                    "type": "spatial",
                    "factors": factors,
                    "permutation": perm(xs + ys),
                    "split": len(xs),
                }
            )
        factors = {d: 1 for d in dims}
        for d, n, _ in temporal:
            factors[d] *= n
        order: list[str] = []
        for d, _, _ in reversed(temporal):
            if d not in order:
                order.append(d)
        out.append({"target": lv["name"], "type": "temporal", "factors": factors, "permutation": perm(order)})
    return out


# ============================================================================================= #
# outputs -> CostRecord
# ============================================================================================= #
def stats_to_record(stats: TimeloopStats, mapping: Any = None) -> CostRecord:
    """A CostRecord from parsed stats: energy = arithmetic + levels + networks (pJ); per-level energy
    keyed by level name in the record's order (storage levels from the outermost inward, then the
    arithmetic level; Timeloop prints them the other way round); accesses per level as
    ``{"reads"|"fills"|"updates"|"utilized_instances": {dataspace: n}}`` (counts per instance)."""
    level_energy: dict[str, float] = {}
    accesses: dict[str, dict[str, dict[str, int]]] = {}
    for lv in reversed(stats.levels):
        level_energy[lv.name] = lv.energy_pJ
        accesses[lv.name] = {
            "reads": {ds: d.reads for ds, d in lv.dataspaces.items()},
            "fills": {ds: d.fills for ds, d in lv.dataspaces.items()},
            "updates": {ds: d.updates for ds, d in lv.dataspaces.items()},
            "utilized_instances": {ds: d.utilized_instances for ds, d in lv.dataspaces.items()},
        }
    level_energy[stats.arithmetic.name] = stats.arithmetic.energy_pJ
    return CostRecord(
        energy_pJ=round(stats.energy_pJ, 6),
        cycles=stats.cycles,
        macs=stats.computes,
        level_energy_pJ=level_energy,
        accesses=accesses,
        mapping=mapping,
    )


def read_output_folder(folder: str | Path, prefix: str = OUT_PREFIX) -> CostRecord:
    """The CostRecord of one Timeloop run folder: ``<prefix>.stats.txt`` plus the mapping from
    ``<prefix>.map.yaml``, or ``<prefix>.map.txt`` when there is no map.yaml."""
    folder = Path(folder)
    stats = parse_stats((folder / f"{prefix}.stats.txt").read_text())
    map_yaml = folder / f"{prefix}.map.yaml"
    map_txt = folder / f"{prefix}.map.txt"
    mapping = None
    if map_yaml.is_file():
        mapping = parse_map_yaml(yaml.safe_load(map_yaml.read_text()))
    elif map_txt.is_file():
        mapping = parse_map_txt(map_txt.read_text())
    return stats_to_record(stats, mapping)


# ============================================================================================= #
# inputs for one run
# ============================================================================================= #
def problem_doc(layer: Layer) -> dict[str, Any]:
    """Timeloop's CNN-layer problem for ``layer`` (P and Q as given: the tile)."""
    coeffs = ("Wstride", "Hstride", "Wdilation", "Hdilation")
    return {
        "problem": {
            "shape": {
                "name": "CNN-Layer",
                "dimensions": list(DIMS),
                "coefficients": [{"name": c, "default": 1} for c in coeffs],
                "data-spaces": [
                    {"name": "Weights", "projection": [[["C"]], [["M"]], [["R"]], [["S"]]]},
                    {
                        "name": "Inputs",
                        "projection": [
                            [["N"]],
                            [["C"]],
                            [["R", "Wdilation"], ["P", "Wstride"]],
                            [["S", "Hdilation"], ["Q", "Hstride"]],
                        ],
                    },
                    {
                        "name": "Outputs",
                        "projection": [[["N"]], [["M"]], [["Q"]], [["P"]]],
                        "read-write": True,
                    },
                ],
            },
            "instance": {
                **{d: int(getattr(layer, d)) for d in DIMS},
                **{c: int(getattr(layer, c)) for c in coeffs},
            },
        }
    }


_ARCH_CONSTRAINT_KEYS = ("architecture_constraints", "arch_constraints")


def _targets(body: Any) -> list[Any] | None:
    if isinstance(body, Mapping) and isinstance(body.get("targets"), list):
        return body["targets"]
    if isinstance(body, list):
        return body
    return None


def variant_constraint_docs(inputs: BenchmarkInputs, variant: Variant, dram: str) -> list[dict[str, Any]]:
    """The constraint documents for one variant.

    With the original's seven files: the variant's file plus the shared files, as they are. Otherwise
    the shared files with the DRAM keep/bypass set for the variant (DRAM keeps the tensors that are not
    on chip): any DRAM datatype target is replaced; one is added to the first
    ``architecture_constraints`` (a new document when there is none -- Timeloop merges documents by
    top-level key, so a second ``architecture_constraints`` would replace the first)."""
    if inputs.variant_files:
        return [inputs.variant_files[variant].doc] + [c.doc for c in inputs.constraints]
    docs = [_deep_copy(c.doc) for c in inputs.constraints]
    keep = list(variant.dram_keeps)
    dram_target = {
        "target": dram,
        "type": "datatype",
        "keep": keep,
        "bypass": [t for t in TENSORS if t not in keep],
    }
    placed = False
    for doc in docs:
        for key, body in list(doc.items()):
            targets = _targets(body)
            if targets is None:
                continue
            targets[:] = [
                t
                for t in targets
                if not (
                    isinstance(t, Mapping)
                    and t.get("target") == dram
                    and t.get("type") in ("datatype", "bypass")
                )
            ]
            if key in _ARCH_CONSTRAINT_KEYS and not placed:
                targets.insert(0, dram_target)
                placed = True
    if not placed:
        docs.insert(0, {"architecture_constraints": {"targets": [dram_target]}})
    return docs


def _deep_copy(doc: Any) -> Any:
    if isinstance(doc, Tagged):
        return Tagged(doc.tag, {k: _deep_copy(v) for k, v in doc.items()})
    if isinstance(doc, Mapping):
        return {k: _deep_copy(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_deep_copy(v) for v in doc]
    return doc


def mapper_doc(inputs: BenchmarkInputs) -> dict[str, Any]:
    """The mapper section given to Timeloop: the user's mapper.yaml with ``live-status`` off (its curses
    UI waits for a key press), or the default metrics when none was given."""
    if inputs.mapper_file is not None:
        doc = inputs.mapper_file.doc
        body = dict(doc["mapper"] if isinstance(doc, Mapping) and "mapper" in doc else doc)
    else:
        body = {"optimization-metrics": list(inputs.mapper.optimization_metrics)}
    body["live-status"] = False
    body.pop("out_prefix", None)
    return {"mapper": body}


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes ``Tagged`` mappings back with their ``!Tag`` (as ``load_yaml`` read them)."""


def _represent_tagged(dumper: yaml.SafeDumper, data: Tagged) -> yaml.Node:
    tag = f"!{data.tag}"
    if set(data) == {"_items"}:
        return dumper.represent_sequence(tag, data["_items"])
    if set(data) == {"_value"}:
        return dumper.represent_scalar(tag, str(data["_value"]))
    return dumper.represent_mapping(tag, dict(data))


_Dumper.add_representer(Tagged, _represent_tagged)


def _dump(path: Path, doc: Any) -> Path:
    path.write_text(yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False))
    return path


def write_run_inputs(folder: Path, inputs: BenchmarkInputs, job: Job, dram: str) -> list[Path]:
    """Write every input file of one run into ``folder``; returns them in command-line order."""
    files = [_dump(folder / "arch.yaml", inputs.arch.doc)]
    for i, comp in enumerate(inputs.components):
        files.append(_dump(folder / f"component_{i:02d}_{Path(comp.path).stem}.yaml", comp.doc))
    files.append(_dump(folder / "problem.yaml", problem_doc(job.layer)))
    for i, doc in enumerate(variant_constraint_docs(inputs, job.variant, dram)):
        files.append(_dump(folder / f"constraints_{i:02d}.yaml", doc))
    files.append(_dump(folder / "mapper.yaml", mapper_doc(inputs)))
    if inputs.ert is not None:
        files.append(_dump(folder / "ERT.yaml", inputs.ert.doc))
    return files


# ============================================================================================= #
# the backend
# ============================================================================================= #
def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_binary(name: str = BINARY) -> str:
    """Absolute path of ``timeloop-mapper`` on PATH; BackendUnavailable (one line) when missing."""
    found = shutil.which(name)
    if found is None:
        raise BackendUnavailable(
            f"--backend timeloop: {name} not found on PATH; "
            "install Timeloop (https://timeloop.csail.mit.edu) or use --backend builtin"
        )
    return found


#: the code that turns a job into Timeloop's inputs and its outputs into a record (input writer and
#: parsers, with what they import from the model packages; see ``provenance``)
CODE_ROOTS: tuple[str, ...] = ("deepfrack.benchmark.timeloop", "deepfrack.benchmark.energy_gaps")


def timeloop_code_digest() -> str:
    """The package version and a hash of the code that writes Timeloop's inputs and parses its outputs."""
    return code_digest(CODE_ROOTS)


@dataclass(frozen=True)
class TimeloopBackend:
    """Runs ``binary`` per job. ``timeout_s``: per run (None: no limit); a run that exceeds it fails.
    ``code``: the digest of deepfrack's code that writes the inputs and parses the outputs (part of the
    fingerprint with the binary's hash: a parser fix recomputes the entries it read)."""

    inputs: BenchmarkInputs
    binary: str
    binary_sha256: str
    dram: str
    timeout_s: float | None = None
    name: str = "timeloop"
    batch_size: int | None = 1
    keep_dirs: str | None = field(default=None, compare=False)
    code: str = field(default_factory=timeloop_code_digest)

    def fingerprint(self, variant: Variant) -> str:
        return content_hash(
            {
                "backend": "timeloop",
                "binary": self.binary_sha256,
                "code": self.code,
                "inputs": self.inputs.content(variant),
                "mapper_doc": mapper_doc(self.inputs) if self.inputs.mapper.error is None else None,
            }
        )

    def evaluator(self) -> TimeloopEvaluator:
        return TimeloopEvaluator(self)


def make_timeloop_backend(inputs: BenchmarkInputs, timeout_s: float | None = None) -> TimeloopBackend:
    """The Timeloop backend for these inputs; BackendUnavailable when the binary is missing, InputError
    for inputs Timeloop cannot take (a v0.4 architecture)."""
    if str(inputs.architecture.version) != "0.3":
        raise InputError(
            inputs.arch.path,
            "architecture",
            "--backend timeloop takes Timeloop v0.3 architectures (subtree/local); "
            "v0.4 needs Timeloop's Python front end",
        )
    binary = find_binary()
    return TimeloopBackend(
        inputs=inputs,
        binary=binary,
        binary_sha256=_file_sha256(binary),
        dram=inputs.dram,
        timeout_s=timeout_s,
        keep_dirs=os.environ.get("DEEPFRACK_TIMELOOP_KEEP"),
    )


class TimeloopEvaluator:
    """Runs one ``timeloop-mapper`` per job, in a temporary folder."""

    def __init__(self, backend: TimeloopBackend):
        self.backend = backend
        inputs = backend.inputs
        self.broken = f"unusable mapper settings: {inputs.mapper.error}" if inputs.mapper.error else None
        self.gaps: tuple[energy_gaps.MissingAction, ...] = ()
        if inputs.energy_table is not None and inputs.ert is not None:
            rules = default_rules(inputs.architecture)
            self.gaps = energy_gaps.missing_actions(
                inputs.energy_table, inputs.architecture, rules, inputs.ert.path
            )

    def evaluate(self, jobs: Sequence[Job]) -> list[Outcome]:
        return [self._one(job) for job in jobs]

    def _one(self, job: Job) -> Outcome:
        if self.broken is not None:
            return Outcome.infeasible(self.broken)
        outcome = self._run(job)
        if outcome.record is not None:  # the ERT lacks an action that Timeloop's mapping performs
            used = energy_gaps.needed(outcome.record, self.gaps)
            if used:
                return Outcome.infeasible(energy_gaps.reason(used))
        return outcome

    def _run(self, job: Job) -> Outcome:
        if job.layer.kind not in ("conv", "fc") or job.layer.groups != 1:
            return Outcome.infeasible(
                f"the Timeloop backend models conv and fc layers (Timeloop's CNN-layer problem); this is a "
                f"{job.layer.kind} layer{' with groups' if job.layer.groups != 1 else ''}"
            )
        with tempfile.TemporaryDirectory(prefix="deepfrack-timeloop-") as tmp:
            folder = Path(tmp)
            files = write_run_inputs(folder, self.backend.inputs, job, self.backend.dram)
            log = folder / "deepfrack-run.log"
            try:
                with log.open("w") as logf:
                    proc = subprocess.run(
                        [self.backend.binary, *[f.name for f in files]],
                        cwd=folder,
                        stdin=subprocess.DEVNULL,
                        stdout=logf,
                        stderr=subprocess.STDOUT,
                        timeout=self.backend.timeout_s,
                        start_new_session=True,  # the terminal's Ctrl-C goes to deepfrack, not to Timeloop
                        check=False,
                    )
            except subprocess.TimeoutExpired:
                return Outcome.error(f"timeloop-mapper did not finish within {self.backend.timeout_s} s")
            except OSError as exc:
                return Outcome.error(f"cannot run {self.backend.binary}: {exc}")
            output = log.read_text(errors="replace")
            if self.backend.keep_dirs:
                self._keep(folder, job)
            stats = folder / f"{OUT_PREFIX}.stats.txt"
            if not stats.is_file():
                if "no valid mappings found" in output:
                    return Outcome.infeasible(
                        "timeloop-mapper found no valid mapping within the constraints and search limits"
                    )
                last = next((ln.strip() for ln in reversed(output.splitlines()) if ln.strip()), "no output")
                return Outcome.error(
                    f"timeloop-mapper exited with code {proc.returncode} and wrote no stats: {last}"
                )
            try:
                record = read_output_folder(folder)
            except (TimeloopParseError, OSError, yaml.YAMLError) as exc:
                return Outcome.error(f"cannot read timeloop-mapper's output: {exc}")
            return Outcome.ok(record)

    def _keep(self, folder: Path, job: Job) -> None:
        dest = (
            Path(self.backend.keep_dirs or ".")
            / f"{job.variant.value}_Layer{job.layer_index + 1}_Tile{job.tile_h}x{job.tile_w}"
        )
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(folder, dest)
