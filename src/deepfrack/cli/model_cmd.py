"""`deepfrack model FILE... [--json]`: Timeloop-equivalent energy, cycles and access counts of one
mapping (a drop-in for ``timeloop-model``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import click
import yaml

from deepfrack.cli import main
from deepfrack.cost.declared_map import map_declared
from deepfrack.cost.model import LayerModel, ModelResult, evaluate_shape, get_rules
from deepfrack.cost.model_io import load_model_inputs
from deepfrack.dims import TENSORS


def _renamed_json(doc: dict, names: Mapping[str, str]) -> dict:
    """The --json document with the tensors under the problem's own data-space names."""
    for lv in doc["levels"]:
        for key in ("reads", "fills", "updates", "per_instance"):
            lv[key] = {names.get(t, t): v for t, v in lv[key].items()}
    return doc


def _summary(res: ModelResult, sources: dict[str, str], names: Mapping[str, str]) -> str:
    lines = []
    lines.append(f"deepfrack model ({res.rules} rules)")
    lines.append("  " + "  ".join(f"{k}: {v}" for k, v in sources.items()))
    lines.append("")
    head = (
        f"{'level':<24} {'tensor':<8} {'inst':>6} {'capacity':>9} "
        f"{'reads':>14} {'fills':>14} {'updates':>14} {'energy pJ':>16}"
    )
    lines.append("Per instance counts (Timeloop's stats.txt convention); energy over all instances")
    lines.append(head)
    lines.append("-" * len(head))
    for lv in res.levels:
        first = True
        if not lv.tensors:
            lines.append(
                f"{lv.name:<24} {'-':<8} {'':>6} {'':>9} {'':>14} {'':>14} {'':>14} {lv.energy_pJ:>16.2f}"
            )
            continue
        for t in TENSORS:
            st = lv.tensors.get(t)
            if st is None:
                continue
            name = lv.name if first else ""
            lines.append(
                f"{name:<24} {names.get(t, t):<8} {st.utilized_instances:>6} {st.utilized_capacity:>9} "
                f"{st.reads:>14} {st.fills:>14} {st.updates:>14} {st.energy_pJ:>16.2f}"
            )
            first = False
        if lv.leakage_pJ:
            lines.append(
                f"{'':<24} {'leakage':<8} {'':>6} {'':>9} {'':>14} {'':>14} {'':>14} {lv.leakage_pJ:>16.2f}"
            )
    lines.append(
        f"{res.mac_name:<24} {'MACs':<8} {res.mac_utilized:>6} {'':>9} "
        f"{res.macs:>14} {'':>14} {'':>14} {res.mac_energy_pJ:>16.2f}"
    )
    lines.append("")
    lines.append("Summary")
    lines.append(f"  Valid: {'yes' if res.valid else 'NO'}")
    for v in res.violations:
        lines.append(f"    - {v}")
    lines.append(f"  Utilization: {res.utilization * 100:.2f}%")
    lines.append(f"  Cycles: {res.cycles}")
    lines.append(f"  Energy: {res.energy_pJ / 1e6:.2f} uJ")
    lines.append(f"  MACs: {res.macs}")
    lines.append("  pJ/MAC")
    for lv in reversed(res.levels):
        lines.append(f"    {lv.name:<24} = {lv.energy_pJ / res.macs:.2f}")
    lines.append(f"    {res.mac_name:<24} = {res.mac_energy_pJ / res.macs:.2f}")
    lines.append(f"    {'Total':<24} = {res.pj_per_mac:.2f}")
    return "\n".join(lines)


@main.command("model")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--json", "as_json", is_flag=True, help="Print the result as JSON (counts summed over instances)."
)
@click.option(
    "--rules",
    type=click.Choice(["auto", "timeloop-2023", "timeloop-2024"]),
    default="auto",
    show_default=True,
    help="Timeloop version to reproduce: 'timeloop-2023' (the build the original DeepFrack used: Outputs "
    "fills not elided, no leakage), 'timeloop-2024' (v3/v4 with the v0.4 front end). 'auto' picks 2024 for "
    "v0.4 architecture files and 2023 for v0.3 ones.",
)
@click.option(
    "--map-out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Without a mapping among FILES: write the mapper's best mapping to this map.yaml.",
)
def model_command(files: tuple[Path, ...], as_json: bool, rules: str, map_out: Path | None) -> None:
    """Energy, cycles and per-level access counts of one mapping, as timeloop-model computes them.

    FILES are YAML files or folders, merged as Timeloop merges its inputs and recognized by their
    top-level keys: the architecture (v0.3 or v0.4) and its compound-component classes, the problem
    (a CNN layer, a declared shape that embeds in one: conv1d, matrix multiply, ..., or a grouped
    convolution, whose nest analysis is simulated), the mapping
    (map.yaml) and, optionally, an Accelergy ERT (without one the built-in 45 nm energy table is
    used). A mapping whose tiles do not fit is reported with valid: false and the violations, and its
    numbers. Without a mapping, deepfrack's mapper finds one first (as timeloop-mapper would), under
    the constraints of the files and the mapper's optimization_metrics (default: energy); its map.yaml
    is printed in the problem's names (and written to --map-out).

    \b
    Example:
      deepfrack model arch.yaml components/ problem.yaml map.yaml ERT.yaml --json
    """
    inputs = load_model_inputs(
        *files, rules=None if rules == "auto" else get_rules(rules), mapping_optional=True
    )
    problem = inputs.problem
    esrc = inputs.sources.get("energy")
    found = None
    if inputs.mapping is None:
        found = map_declared(
            inputs.arch,
            inputs.energy,
            problem,
            inputs.constraints,
            inputs.rules,
            inputs.metrics or "energy",
            source=inputs.sources["problem"],
        )
        res = found.result
        if map_out is not None:
            map_out.write_text(yaml.safe_dump(found.map_yaml(), sort_keys=False))
    elif inputs.layer is None and problem.declared is not None:
        res = evaluate_shape(inputs.arch, inputs.energy, problem.declared, inputs.mapping, inputs.rules, esrc)
    else:
        res = LayerModel(inputs.arch, inputs.energy, inputs.layer, inputs.rules, source=esrc).evaluate(
            inputs.mapping
        )
    names = problem.tensor_names
    if as_json:
        doc = _renamed_json(res.to_json(), names)
        doc["sources"] = inputs.sources
        if not problem.is_cnn:
            doc["problem"] = {
                "shape": problem.shape,
                "dimensions": list(problem.dims),
                "data_spaces": dict(problem.tensors or {}),
            }
            if problem.declared is not None:  # evaluated by the simulator of Timeloop's nest analysis
                doc["problem"]["nest_analysis"] = "simulated"
        if found is not None:
            doc["mapping"] = found.directives
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(_summary(res, inputs.sources, names))
        if found is not None:
            click.echo("\nMapping found by deepfrack's mapper (map.yaml)")
            click.echo(yaml.safe_dump(found.map_yaml(), sort_keys=False).rstrip())
