"""Cost-table formats.

* The original DeepFrack's folder of ``<VARIANT>.json`` files: ``{"<layer>": {"<tile>": energy_uJ}}``,
  string keys, layers 1-based in the sorted problem-file order, square tiles (P = Q = tile). A
  ``<VARIANT>_cycles.json`` beside it gives cycles; other files (``*_area.json``, ``*_energy.json``)
  are ignored.
* deepfrack's CSV: header ``layer,variant,tile_h,tile_w,energy_uJ`` with optional ``status``
  (``ok`` / ``infeasible``), ``cycles``, ``macs``, per-level ``energy_pJ_<level>`` columns (storage
  levels from the outermost inward, then the compute unit) and the words each tensor moves to and from
  DRAM, ``dram_reads_<tensor>`` and ``dram_updates_<tensor>`` (all instances); layers 1-based; any
  rectangle. Files without the optional columns are read as before.

Internally layers are 0-based (CostTable keys).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepfrack.cost.table import CostKey, CostRecord, CostTable
from deepfrack.dims import TENSORS
from deepfrack.errors import InputError, shown
from deepfrack.files import MAX_CSV_BYTES, read_json, read_text, write_text_atomic
from deepfrack.residency import VARIANTS, Variant, parse_variant
from deepfrack.workload.layer import Network

CSV_BASE_COLUMNS = ("layer", "variant", "tile_h", "tile_w", "status", "energy_uJ", "cycles", "macs")
LEVEL_PREFIX = "energy_pJ_"
#: the DRAM word columns, (kind, tensor, column name)
DRAM_COLUMNS: tuple[tuple[str, str, str], ...] = tuple(
    (kind, t, f"dram_{kind}_{t}") for kind in ("reads", "updates") for t in TENSORS
)


# --------------------------------------------------------------------------------------------- #
# readers
# --------------------------------------------------------------------------------------------- #
def _number(value: Any, path: Path, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(path, field, f"must be a number, got {shown(value)}")
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(path, field, f"must be a number, got {shown(value)}") from None
    if not math.isfinite(x) or x < 0:
        raise InputError(path, field, f"must be a finite non-negative number, got {shown(value)}")
    return x


def _key_int(key: Any, path: Path, field: str) -> int:
    text = str(key).strip()
    if not text.isdigit() or len(text) > 18 or int(text) <= 0:
        raise InputError(path, field, f"must be a positive integer, got {shown(key)}")
    return int(text)


def _read_json_variant(path: Path) -> dict[tuple[int, int], float]:
    """{(layer, tile): value} of one ``<VARIANT>.json``; keys that name the same layer or tile once read
    as numbers (``"1"`` and ``" 1 "``, ``"01"``) are an InputError, not one silently winning."""
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise InputError(path, None, 'expected {"<layer>": {"<tile>": value}}')
    out: dict[tuple[int, int], float] = {}
    layer_keys: dict[int, str] = {}
    for lkey, tiles in doc.items():
        layer = _key_int(lkey, path, f"layer key {shown(lkey, 30)}")
        if layer in layer_keys:
            raise InputError(
                path,
                shown(lkey, 30),
                f"layer {layer} is given twice, as {shown(layer_keys[layer], 30)} and {shown(lkey, 30)}",
            )
        layer_keys[layer] = lkey
        if not isinstance(tiles, dict):
            raise InputError(path, f'"{lkey}"', 'expected {"<tile>": value}')
        tile_keys: dict[int, str] = {}
        for tkey, value in tiles.items():
            where = f"{shown(lkey, 30)}.{shown(tkey, 30)}"
            tile = _key_int(tkey, path, where)
            if tile in tile_keys:
                raise InputError(
                    path,
                    where,
                    f"tile {tile} is given twice, as {shown(tile_keys[tile], 30)} and {shown(tkey, 30)}",
                )
            tile_keys[tile] = tkey
            out[(layer, tile)] = _number(value, path, where)
    return out


def read_json_tables(folder: str | Path) -> CostTable:
    """Read the original's folder of ``<VARIANT>.json`` tables (energy in uJ, 1-based layers,
    square tiles) and the ``<VARIANT>_cycles.json`` files when present."""
    folder = Path(folder)
    table = CostTable(source=str(folder))
    found = False
    names = {f.name.lower(): f for f in folder.iterdir() if f.is_file()}
    for v in VARIANTS:
        f = names.get(f"{v.value.lower()}.json")
        if f is None:
            continue
        found = True
        energies = _read_json_variant(f)
        cf = names.get(f"{v.value.lower()}_cycles.json")
        cycles = _read_json_variant(cf) if cf is not None else {}
        for (layer, tile), e_uJ in energies.items():
            table.add(
                layer - 1, v, tile, tile, CostRecord(energy_pJ=e_uJ * 1e6, cycles=cycles.get((layer, tile)))
            )
    if not found:
        raise InputError(
            folder,
            None,
            f"no cost tables here: expected <VARIANT>.json files "
            f"({', '.join(v.value for v in VARIANTS)}) or a CSV",
        )
    return table


def read_csv_table(path: str | Path) -> CostTable:
    """Read deepfrack's cost CSV (1-based layers, any rectangle). One row per (layer, variant, tile_h,
    tile_w): a repeated entry (twice ok, or ok and infeasible) is an InputError naming both lines."""
    path = Path(path)
    table = CostTable(source=str(path))
    text = read_text(path, "CSV file", MAX_CSV_BYTES)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    seen: dict[CostKey, tuple[int, str]] = {}  # key -> (line, status) of its first row
    try:
        columns = _csv_header(path, list(reader.fieldnames or []))
        for lineno, row in enumerate(reader, start=2):
            _csv_row(table, path, columns, lineno, row, seen)
    except csv.Error as exc:
        raise InputError(path, f"line {reader.line_num}", f"malformed CSV: {exc}") from None
    if not table.records and not table.infeasible:
        raise InputError(path, None, "no cost rows")
    return table


@dataclass(frozen=True)
class _CsvColumns:
    """The optional columns a costs.csv header has: per-level energies, DRAM words (kind, tensor,
    column) and the level those words belong to (the outermost: the first level column)."""

    levels: list[str]
    dram: list[tuple[str, str, str]]
    dram_level: str


def _csv_header(path: Path, header: list[str]) -> _CsvColumns:
    """The optional columns of a checked header (required ones present, none given twice)."""
    missing = [c for c in ("layer", "variant", "tile_h", "tile_w", "energy_uJ") if c not in header]
    if missing:
        raise InputError(
            path, "header", f"missing column {missing[0]!r}; need layer,variant,tile_h,tile_w,energy_uJ"
        )
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise InputError(path, "header", f"column {shown(twice[0], 40)} is given twice")
    levels = [c for c in header if c.startswith(LEVEL_PREFIX)]
    if LEVEL_PREFIX in levels:
        raise InputError(path, "header", f"column {LEVEL_PREFIX!r} names no level")
    dram = [(kind, t, c) for kind, t, c in DRAM_COLUMNS if c in header]
    return _CsvColumns(levels, dram, levels[0][len(LEVEL_PREFIX) :] if levels else "DRAM")


def _csv_row(
    table: CostTable,
    path: Path,
    columns: _CsvColumns,
    lineno: int,
    row: dict[str, Any],
    seen: dict[CostKey, tuple[int, str]],
) -> None:
    """Add one row of a costs.csv to ``table`` (``seen``: key -> line and status of its first row)."""
    where = f"line {lineno}"
    if None in row or any(v is None for v in row.values()):
        raise InputError(path, where, "wrong number of fields")
    layer = _key_int(row["layer"], path, f"{where}.layer")
    try:
        variant = parse_variant(row["variant"])
    except ValueError as exc:
        raise InputError(path, f"{where}.variant", str(exc)) from None
    h = _key_int(row["tile_h"], path, f"{where}.tile_h")
    w = _key_int(row["tile_w"], path, f"{where}.tile_w")
    status = (row.get("status") or "ok").strip().lower()
    if status not in ("ok", "infeasible"):
        raise InputError(path, f"{where}.status", f"must be 'ok' or 'infeasible', got {shown(row['status'])}")
    key = (layer - 1, variant, h, w)
    if key in seen:
        first, first_status = seen[key]
        entry = f"layer {layer}, variant {variant.value}, tile {h}x{w}"
        if first_status != status:
            raise InputError(
                path, where, f"{entry} is {first_status} on line {first} and {status} on line {lineno}"
            )
        raise InputError(path, where, f"{entry} is given twice, on lines {first} and {lineno}")
    seen[key] = (lineno, status)
    if status == "infeasible":
        table.infeasible.add(key)
        return
    energy = _number(row["energy_uJ"], path, f"{where}.energy_uJ")
    cyc = row.get("cycles")
    macs = row.get("macs")
    levels = {
        c[len(LEVEL_PREFIX) :]: _number(row[c], path, f"{where}.{c}")
        for c in columns.levels
        if row[c] not in ("", None)
    }
    n_macs = None
    if macs not in (None, ""):
        m = _number(macs, path, f"{where}.macs")
        if not m.is_integer():
            raise InputError(path, f"{where}.macs", f"must be a whole number, got {shown(macs)}")
        n_macs = int(m)
    table.records[key] = CostRecord(
        energy_pJ=energy * 1e6,
        cycles=_number(cyc, path, f"{where}.cycles") if cyc not in (None, "") else None,
        macs=n_macs,
        level_energy_pJ=levels,
        accesses=_dram_accesses(row, columns.dram, columns.dram_level, path, where),
    )


def _dram_accesses(
    row: dict[str, str], cols: list[tuple[str, str, str]], level: str, path: Path, where: str
) -> dict[str, dict[str, dict[str, float]]]:
    """The DRAM word columns of a row as ``CostRecord.accesses`` of the outermost level (words over
    all instances); empty when the row has none."""
    counts: dict[str, dict[str, float]] = {}
    for kind, t, c in cols:
        if row[c] not in ("", None):
            counts.setdefault(kind, {})[t] = _number(row[c], path, f"{where}.{c}")
    return {level: counts} if counts else {}


def read_tables(path: str | Path) -> CostTable:
    """A folder holding ``costs.csv`` (``deepfrack benchmark``'s output: read the CSV, which has every
    shape, cycles, per-level energy and infeasible entries -- the JSON tables beside it are its square,
    energy-only subset), a folder of the original's JSON tables, or a CSV file."""
    p = Path(path)
    if p.is_dir():
        if (p / "costs.csv").is_file():
            return read_csv_table(p / "costs.csv")
        return read_json_tables(p)
    if not p.exists():
        raise InputError(p, None, "cost tables not found")
    if p.suffix.lower() == ".csv":
        return read_csv_table(p)
    raise InputError(p, None, "expected a folder of <VARIANT>.json tables or a .csv file")


def check_table_layers(table: CostTable, n_layers: int) -> None:
    """InputError when the table names a layer the network does not have."""
    extra = sorted(layer for layer in table.layers | {k[0] for k in table.infeasible} if layer >= n_layers)
    if extra:
        raise InputError(
            table.source,
            f"layer {extra[0] + 1}",
            f"the workload has only {n_layers} layers (table layers are 1-based)",
        )


def check_table(table: CostTable, network: Network) -> None:
    """InputError (naming the table file, the layer and the shape) when the table does not fit the
    network: a layer the network does not have, or a tile larger than its layer's output plane (the
    table was made for another network). Infeasible entries are checked too. Layers 1-based in the
    message, as in the files."""
    check_table_layers(table, len(network))
    planes = [lay.out_plane for lay in network.layers]
    bad = [k for k in (*table.records, *table.infeasible) if k[2] > planes[k[0]][0] or k[3] > planes[k[0]][1]]
    if bad:
        order = {v: i for i, v in enumerate(VARIANTS)}
        layer, variant, h, w = min(bad, key=lambda k: (k[0], order[k[1]], k[2], k[3]))
        lay = network.layers[layer]
        raise InputError(
            table.source,
            f"layer {layer + 1}",
            f"variant {variant.value} has a {h}x{w} tile (h x w), larger than the output plane of layer "
            f"{layer + 1} ({lay.name}), {lay.Q}x{lay.P}: were these tables made for another network?",
        )


# --------------------------------------------------------------------------------------------- #
# writers
# --------------------------------------------------------------------------------------------- #
def _fmt(x: float | int | None) -> str:
    if x is None:
        return ""
    if isinstance(x, int) or float(x).is_integer():  # counts (cycles, MACs) as integers
        return str(int(x))
    return repr(float(x))


def table_to_csv(table: CostTable, levels: Iterable[str] | None = None) -> str:
    """The CSV text of a table (1-based layers), rows sorted by (layer, variant, tile_h, tile_w)."""
    if levels is None:
        seen: dict[str, None] = {}
        for r in table.records.values():
            for name in r.level_energy_pJ:
                seen.setdefault(name, None)
        levels = list(seen)
    levels = list(levels)
    dram = {key: rec.dram_words() for key, rec in table.records.items()}
    dram_cols = DRAM_COLUMNS if any(d is not None for d in dram.values()) else ()
    order = {v: i for i, v in enumerate(VARIANTS)}
    keys = sorted(set(table.records) | table.infeasible, key=lambda k: (k[0], order[k[1]], k[2], k[3]))
    lines: list[list[str]] = [
        list(CSV_BASE_COLUMNS) + [LEVEL_PREFIX + n for n in levels] + [c for _, _, c in dram_cols]
    ]
    for key in keys:
        layer, v, h, w = key
        rec = table.records.get(key)
        if rec is None:
            lines.append(
                [str(layer + 1), v.value, str(h), str(w), "infeasible", "", "", ""]
                + [""] * (len(levels) + len(dram_cols))
            )
            continue
        words = dram[key]
        lines.append(
            [
                str(layer + 1),
                v.value,
                str(h),
                str(w),
                "ok",
                _fmt(rec.energy_uJ),
                _fmt(rec.cycles),
                _fmt(rec.macs),
            ]
            + [_fmt(rec.level_energy_pJ.get(n)) for n in levels]
            + [_fmt(None if words is None else words[kind][t]) for kind, t, _ in dram_cols]
        )
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(lines)
    return buf.getvalue()


def write_csv_table(table: CostTable, path: str | Path, levels: Iterable[str] | None = None) -> None:
    write_text_atomic(path, table_to_csv(table, levels))


def write_json_tables(
    table: CostTable, folder: str | Path, variants: Iterable[Variant] = VARIANTS
) -> list[Path]:
    """Write the original's ``<VARIANT>.json`` files (energy in uJ, square tiles only, 1-based
    layers) and, when every record of a variant has cycles, ``<VARIANT>_cycles.json`` beside it (the
    original's MobileNet example has such files). Returns the files written."""
    folder = Path(folder)
    written = []
    for v in variants:
        energy: dict[str, dict[str, float]] = {}
        cycles: dict[str, dict[str, float]] | None = {}
        for (layer, var, h, w), rec in sorted(table.items(), key=lambda kv: (kv[0][0], kv[0][2])):
            if var == v and h == w:
                energy.setdefault(str(layer + 1), {})[str(h)] = rec.energy_uJ
                if cycles is not None and rec.cycles is not None:
                    cycles.setdefault(str(layer + 1), {})[str(h)] = rec.cycles
                else:
                    cycles = None
        for suffix, doc in (("", energy), ("_cycles", cycles)):
            if doc is None or (suffix and not doc):
                continue
            path = folder / f"{v.value}{suffix}.json"
            write_text_atomic(path, json.dumps(doc, indent=1) + "\n")
            written.append(path)
    return written
