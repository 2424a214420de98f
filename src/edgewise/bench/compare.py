"""`edgewise bench A B C`: any models, bundles or backends side by side, quality relative to the first."""

from __future__ import annotations

from pathlib import Path

from edgewise.bench import BenchSpec, bench_variant
from edgewise.devices import get_device, host_bandwidth_gbs
from edgewise.errors import EdgewiseError
from edgewise.evaluate import check_model_fits, parse_task, relative_drop
from edgewise.models import load
from edgewise.models.kinds import ModelRole
from edgewise.models.source import CAUSAL_LM
from edgewise.progress import Progress
from edgewise.report.row import VariantRow
from edgewise.runtime import load_model
from edgewise.runtime.backend import capability


def _label(ref: str, backend: str, precision: str) -> str:
    name = Path(ref).name if ("/" in ref or Path(ref).exists()) else ref
    return f"{name}@{backend}" + (f":{precision}" if precision not in ("fp32", "native") else "")


def compare(targets: list[tuple[str, str, str]], task: str | None = None, device: str = "host",
            max_tokens: int = 64, passes: int = 2, progress: Progress | None = None) -> dict:
    progress = progress or Progress()
    if not targets:
        raise EdgewiseError("name at least one model to bench")
    dev = get_device(device)
    sources = [load(ref) for ref, _, _ in targets]
    kinds = {s.task for s in sources}
    if len(kinds) > 1:
        raise EdgewiseError("bench compares models of one kind: all language models or all encoders")
    decoder = sources[0].task == CAUSAL_LM
    t = parse_task(task) if task else None
    if t:
        check_model_fits(t, sources[0].task, targets[0][0])
    rows, ref_state, ref_metrics = [], None, None
    progress.stage("load+eval", len(targets))
    for (ref, backend, precision), src in zip(targets, sources):
        progress.step(_label(ref, backend, precision))
        row = VariantRow(name=_label(ref, backend, precision), method=f"{ref} on {backend} ({precision})",
                         backend=backend, precision=precision, path=ref)
        try:
            lm = load_model(src, backend=backend, precision=precision)
            row.size_mb = round(lm.size_bytes() / 1e6, 2)
            row.bits_per_weight = capability(lm, "bits_per_weight")  # None where the format does not say
            if t:
                if ref_state is None:
                    ref_state = t.reference(lm)
                m = t.evaluate(lm, ref_state)
                ref_metrics = ref_metrics or m
                row.metrics, row.primary, row.kld = m, m.get(t.primary), m.get("kld")
                row.same_top_token = m.get("same_top_token")
                row.relative_drop = relative_drop(t, m[t.primary], ref_metrics[t.primary])
            del lm
        except EdgewiseError as e:
            row.error = str(e).splitlines()[0]
        rows.append(row)
    host_bw = None
    progress.stage("bench", len(rows) + (1 if decoder else 0))
    if decoder:
        progress.step("memory bandwidth probe")
        host_bw = host_bandwidth_gbs()
    for row, (ref, backend, precision) in zip(rows, targets):
        progress.step(row.name)
        if row.error:
            continue
        row.add_bench(bench_variant(BenchSpec(ref, backend, precision, threads=dev.threads, max_tokens=max_tokens,
                                              passes=passes), dev, host_bw))
    return {
        "model": {"kind": ModelRole.DECODER if decoder else ModelRole.ENCODER, "name": ", ".join(r.name for r in rows)},
        "task": {"kind": t.kind if t else "none", "primary": t.primary if t else "quality",
                 "higher_is_better": t.higher_is_better if t else True},
        "device": dev.as_dict(),
        "reference": rows[0].name,
        "variants": [r.as_dict() for r in rows],
        "host": {"bandwidth_gbs": host_bw},
    }
