"""Device profiles as data: cores, memory, storage and bandwidth, each figure with its source.

The presets live in `edgewise/data/devices/profiles.toml`; `host` is measured each time it is asked for (the
bandwidth probe runs once per process).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import psutil

from edgewise.devices.bandwidth import host_bandwidth_gbs, usable_cpus
from edgewise.errors import EdgewiseError

FIGURES = ("cores", "ram_gb", "usable_ram_gb", "storage_gb", "bandwidth_gbs")
BANDWIDTH_KINDS = ("spec-peak", "measured-read")
HOST = "host"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class DeviceProfile:
    """One target device. RAM and storage in GiB, bandwidth in GB/s; `sources` names where each figure comes from."""

    name: str
    description: str
    cores: int
    ram_gb: float
    usable_ram_gb: float
    storage_gb: float
    bandwidth_gbs: float
    bandwidth_kind: str
    sources: dict[str, str] = field(default_factory=dict)
    measured: bool = False

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise EdgewiseError(f"device name {self.name!r} must be lower-case letters, digits and dashes")
        if isinstance(self.cores, bool) or not isinstance(self.cores, int) or self.cores < 1:
            raise EdgewiseError(f"device {self.name}: cores must be a positive integer, got {self.cores!r}")
        for f in ("ram_gb", "usable_ram_gb", "storage_gb", "bandwidth_gbs"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise EdgewiseError(f"device {self.name}: {f} must be a positive number, got {v!r}")
            object.__setattr__(self, f, float(v))
        if self.usable_ram_gb > self.ram_gb:
            raise EdgewiseError(f"device {self.name}: usable_ram_gb ({self.usable_ram_gb}) exceeds ram_gb "
                                f"({self.ram_gb}); usable memory is part of the total")
        if self.bandwidth_kind not in BANDWIDTH_KINDS:
            raise EdgewiseError(f"device {self.name}: bandwidth_kind must be one of {', '.join(BANDWIDTH_KINDS)}, "
                                f"got {self.bandwidth_kind!r}")
        missing = [f for f in FIGURES if not str(self.sources.get(f, "")).strip()]
        if missing:
            raise EdgewiseError(f"device {self.name}: every figure needs a source; add sources for "
                                f"{', '.join(missing)}")
        object.__setattr__(self, "sources", dict(self.sources))

    @property
    def threads(self) -> int:
        """Threads a runtime should use on this device: one per core."""
        return self.cores

    @property
    def usable_ram_mb(self) -> float:
        return self.usable_ram_gb * 1024

    def as_dict(self) -> dict:
        return asdict(self)


def _data_path():
    return resources.files("edgewise") / "data" / "devices" / "profiles.toml"


@functools.lru_cache(maxsize=1)
def _preset_table() -> dict:
    return tomllib.loads(_data_path().read_text(encoding="utf-8"))


def _storage_root() -> Path:
    # Where built artifacts go (see edgewise.home); the nearest existing folder, so nothing gets created here.
    p = Path(os.environ.get("EDGEWISE_HOME", Path.home() / ".cache" / "edgewise"))
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def measure_host() -> DeviceProfile:
    """The `host` profile, measured now: cores, total and available RAM, free disk and read bandwidth (probed once)."""
    entry = _preset_table()[HOST]
    vm = psutil.virtual_memory()
    return DeviceProfile(
        name=HOST,
        description=entry.get("description", "this machine"),
        cores=usable_cpus(),
        ram_gb=vm.total / (1 << 30),
        usable_ram_gb=min(vm.available, vm.total) / (1 << 30),
        storage_gb=max(shutil.disk_usage(_storage_root()).free / (1 << 30), 1e-3),
        bandwidth_gbs=host_bandwidth_gbs(),
        bandwidth_kind=entry.get("bandwidth_kind", "measured-read"),
        sources=dict(entry["sources"]),
        measured=True,
    )


def preset_names() -> list[str]:
    return list(_preset_table())


def get_device(name: str | DeviceProfile) -> DeviceProfile:
    """A device by name (`edgewise devices` lists them); `host` is measured. A profile passes through unchanged."""
    if isinstance(name, DeviceProfile):
        return name
    table = _preset_table()
    key = str(name).strip().lower()
    if key not in table:
        raise EdgewiseError(f"unknown device {name!r}: choose one of {', '.join(table)} (see `edgewise devices`)")
    if key == HOST:
        return measure_host()
    entry = dict(table[key])
    entry.setdefault("description", key)
    try:
        return DeviceProfile(name=key, **entry)
    except TypeError as e:  # an unknown or missing key in the TOML
        raise EdgewiseError(f"device {key}: bad profile entry in profiles.toml ({e})") from None


def list_devices() -> list[DeviceProfile]:
    return [get_device(n) for n in preset_names()]
