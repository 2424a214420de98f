"""Device profiles, the memory-bandwidth probe, the small-model catalog and fit estimates.

    from edgewise.devices import get_device, fit
    fit("qwen2.5-0.5b", "raspberry-pi-5").row("int4").est_tokens_per_s   # an estimate, not a measurement
"""

from edgewise.devices.bandwidth import (
    BandwidthResult,
    achieved_bandwidth_ratio,
    host_bandwidth,
    host_bandwidth_gbs,
    probe_bandwidth,
)
from edgewise.devices.catalog import ModelShape, catalog, get_model_shape, load_config_json, shape_from_config
from edgewise.devices.fit import (
    EFFICIENCY,
    PRECISIONS,
    RUNTIME_OVERHEAD_MB,
    FitReport,
    FitRow,
    Precision,
    bytes_per_token,
    estimate_device_tps,
    estimate_tps,
    fit,
    fits_device,
    weight_bytes,
)
from edgewise.devices.profiles import HOST, DeviceProfile, get_device, list_devices, measure_host, preset_names

__all__ = [
    "BandwidthResult", "achieved_bandwidth_ratio", "host_bandwidth", "host_bandwidth_gbs", "probe_bandwidth",
    "ModelShape", "catalog", "get_model_shape", "load_config_json", "shape_from_config",
    "EFFICIENCY", "PRECISIONS", "RUNTIME_OVERHEAD_MB", "FitReport", "FitRow", "Precision", "bytes_per_token",
    "estimate_device_tps", "estimate_tps", "fit", "fits_device", "weight_bytes",
    "HOST", "DeviceProfile", "get_device", "list_devices", "measure_host", "preset_names",
]
