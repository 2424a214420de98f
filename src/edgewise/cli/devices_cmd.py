"""`edgewise devices` and `edgewise fit`: what the target devices are, and which models they can hold."""

from __future__ import annotations

import json
import math
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from edgewise.cli.app import app

out = Console()
# edgewise.devices is imported inside the commands: it loads numpy, and every command module loads when `edgewise`
# starts.


def _num(x: float, digits: int = 1) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{digits}f}"


@app.command()
def devices(
    name: Optional[str] = typer.Argument(None, help="Show one device with the source of each figure."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (every figure with its source)."),
) -> None:
    """List the device profiles (`host` is measured now, which takes about a second)."""
    from edgewise.devices import get_device, list_devices

    profiles = [get_device(name)] if name else list_devices()
    if as_json:
        payload = [p.as_dict() for p in profiles]
        print(json.dumps(payload[0] if name else payload, indent=2))
        return
    if name:
        p = profiles[0]
        t = Table(title=f"{p.name}: {p.description}", show_lines=False)
        t.add_column("figure")
        t.add_column("value", justify="right")
        t.add_column("source", overflow="fold")
        values = {"cores": str(p.cores), "ram_gb": f"{p.ram_gb:.1f} GiB", "usable_ram_gb": f"{p.usable_ram_gb:.1f} GiB",
                  "storage_gb": f"{p.storage_gb:,.0f} GiB", "bandwidth_gbs": f"{p.bandwidth_gbs:.1f} GB/s"}
        for k, v in values.items():
            t.add_row(k, v, p.sources.get(k, ""))
        out.print(t)
        out.print(f"[dim]bandwidth is {p.bandwidth_kind}[/dim]")
        return
    t = Table(title="Device profiles (RAM and storage in GiB, bandwidth in GB/s)")
    for col in ("device", "cores", "RAM", "usable RAM", "storage", "bandwidth", "bandwidth is"):
        t.add_column(col, justify="left" if col in ("device", "bandwidth is") else "right", no_wrap=True)
    for p in profiles:
        t.add_row(p.name, str(p.cores), _num(p.ram_gb), _num(p.usable_ram_gb), _num(p.storage_gb, 0),
                  _num(p.bandwidth_gbs), p.bandwidth_kind)
    out.print(t)
    out.print("[dim]Every figure has a source: `edgewise devices NAME` or `edgewise devices --json`.[/dim]")


@app.command(name="fit")
def fit_cmd(
    model: str = typer.Argument(..., help="A catalog name (see below), a config.json, or a model folder."),
    device: str = typer.Option("host", "--device", "-d", help="Device profile (`edgewise devices` lists them)."),
    context: Optional[int] = typer.Option(None, "--context", "-c",
                                          help="Context length in tokens (default: 4096, capped at the model's)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Estimate, before any download, whether MODEL runs on a device at each precision, and how fast.

    Catalog: smollm2-135m, smollm2-360m, smollm2-1.7b, qwen2.5-0.5b, gemma-3-270m, gemma-3-1b, tinyllama-1.1b,
    phi-3-mini.
    """
    from edgewise.devices import fit

    r = fit(model, device, context=context)
    if as_json:
        print(json.dumps(r.as_dict(), indent=2))
        return
    d, m = r.device, r.model
    t = Table(title=f"{m.name} ({m.params / 1e6:,.0f}M params) on {d.name}: {d.usable_ram_gb:.1f} GiB usable, "
                    f"{d.bandwidth_gbs:.1f} GB/s, context {r.context}; sizes in MiB")
    for col in ("precision", "bits/w", "weights", "KV cache", "est. memory", "fits?", "est. tok/s*"):
        t.add_column(col, justify="left" if col in ("precision", "fits?") else "right", no_wrap=True)
    for row in r.rows:
        fits = "yes" if row.fits else ("no: RAM" if not row.fits_ram else "no: storage")
        style = None if row.fits else "red"
        t.add_row(row.precision, f"{row.bits_per_weight:g}", _num(row.weights_mb, 0), _num(row.kv_cache_mb, 0),
                  _num(row.memory_mb, 0), fits, _num(row.est_tokens_per_s), style=style)
    out.print(t)
    out.print(f"[dim]est. memory = weights + KV cache at {r.context} tokens + {r.overhead_mb:.0f} MiB runtime "
              f"overhead.\n* ESTIMATE, not a measurement: {r.efficiency:g} x {d.bandwidth_gbs:.1f} GB/s "
              f"({d.bandwidth_kind}) / weight bytes read per token; short-context decode, memory-bound. "
              "See docs/devices.md for the measured error.[/dim]")
