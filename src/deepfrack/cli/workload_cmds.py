"""``deepfrack zoo`` (the networks known by name), ``deepfrack workload show`` (a network's layer table)
and ``deepfrack arch list`` (the bundled accelerators)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from deepfrack.arch.presets import preset_summary, presets
from deepfrack.cli import main
from deepfrack.cli.common import INPUT_SIZE
from deepfrack.workload.describe import network_json, network_table
from deepfrack.workload.loaders import resolve_workload
from deepfrack.workload.zoo import ZOO, zoo_network


@main.command("zoo")
def zoo_command() -> None:
    """List the networks known by name (give one to -w/--workload, e.g. -w resnet50).

    Each is defined in code (nothing is downloaded): batch 1, 224 x 224 unless --input-size says
    otherwise. MACs count conv, depthwise and fc layers; weights are in words.
    """
    rows = [("name", "layers", "MACs", "weights", "description")]
    for name, entry in ZOO.items():
        net = zoo_network(name)
        rows.append(
            (name, str(len(net)), f"{net.macs / 1e9:.3f} G", f"{net.weights / 1e6:.2f} M", entry.description)
        )
    w = [max(len(r[k]) for r in rows) for k in range(4)]
    for r in rows:
        click.echo(f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}  {r[3]:>{w[3]}}  {r[4]}".rstrip())


@main.group("workload")
def workload_group() -> None:
    """Look at a workload (a zoo network, a network YAML, an ONNX model or a folder of problem files)."""


@workload_group.command("show")
@click.argument("workload", type=click.Path(path_type=Path))
@INPUT_SIZE
@click.option("--json", "as_json", is_flag=True, help="Print the network as JSON.")
def workload_show(workload: Path, input_size: tuple[int, int] | None, as_json: bool) -> None:
    """The layer table of WORKLOAD (name, type, inputs, C, M, R, S, P, Q, strides, padding, groups) with
    total MACs and weights; --json gives {"network", "input", "layers", "macs", "weights"}.

    \b
    Examples:
      deepfrack workload show resnet50
      deepfrack workload show model.onnx --input-size 224 224 --json
    """
    network = resolve_workload(workload, input_size or None)
    if as_json:
        click.echo(json.dumps(network_json(network), indent=1))
    else:
        click.echo(network_table(network), nl=False)


@main.group("arch")
def arch_group() -> None:
    """The bundled accelerators (give one to -a/--arch, e.g. -a simba-like)."""


@arch_group.command("list")
def arch_list() -> None:
    """List the bundled accelerators: levels, where each tensor lives on chip and how much fits, and the
    DRAM's energy per word in the built-in 45 nm table (used when no --ert is given)."""
    for preset in presets().values():
        info = preset_summary(preset)
        homes = ", ".join(
            f"{t} -> {lv} ({info['capacity_words'][lv]:,} words)" for t, lv in info["home"].items()
        )
        click.echo(f"{info['name']}: {info['description']}")
        click.echo(f"  levels: {', '.join(info['levels'])}")
        click.echo(f"  on chip: {homes}")
        click.echo(
            f"  DRAM: {info['dram_type']}, {info['dram_word_bits']}-bit words, "
            f"{info['dram_pJ_per_word']:g} pJ per word (built-in table)"
        )
        click.echo(f"  files: {preset.folder}")
