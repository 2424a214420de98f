import os

import psutil
import pytest

from edgewise.devices import DeviceProfile, get_device, list_devices, preset_names
from edgewise.devices.bandwidth import usable_cpus
from edgewise.devices.profiles import FIGURES
from edgewise.errors import EdgewiseError

SOURCES = {f: "test fixture" for f in FIGURES}


def make(**kw) -> DeviceProfile:
    base = dict(name="dev", description="d", cores=4, ram_gb=8, usable_ram_gb=6, storage_gb=32, bandwidth_gbs=17.1,
                bandwidth_kind="spec-peak", sources=SOURCES)
    return DeviceProfile(**{**base, **kw})


@pytest.mark.parametrize("bad, needle", [
    (dict(cores=0), "cores"),
    (dict(cores=2.5), "cores"),
    (dict(cores=True), "cores"),
    (dict(ram_gb=-1), "ram_gb"),
    (dict(bandwidth_gbs=0), "bandwidth_gbs"),
    (dict(storage_gb="32"), "storage_gb"),
    (dict(usable_ram_gb=9), "exceeds ram_gb"),
    (dict(bandwidth_kind="guess"), "bandwidth_kind"),
    (dict(name="Raspberry Pi"), "lower-case"),
    (dict(sources={**SOURCES, "bandwidth_gbs": " "}), "bandwidth_gbs"),
    (dict(sources={}), "every figure needs a source"),
])
def test_profile_validation_rejects_bad_figures(bad, needle):
    with pytest.raises(EdgewiseError, match=needle):
        make(**bad)


def test_profile_normalises_numbers_and_derives_threads():
    p = make(ram_gb=8, usable_ram_gb=6)
    assert isinstance(p.ram_gb, float) and p.usable_ram_mb == 6 * 1024 and p.threads == 4


def test_unknown_device_lists_known_names():
    with pytest.raises(EdgewiseError) as e:
        get_device("raspberry-pi-9")
    msg = str(e.value)
    assert "unknown device 'raspberry-pi-9'" in msg and "\n" not in msg
    for name in ("raspberry-pi-4", "raspberry-pi-5", "jetson-orin-nano", "flagship-phone", "laptop-8gb", "host"):
        assert name in msg


def test_required_presets_load_with_a_source_for_every_figure():
    names = preset_names()
    for required in ("raspberry-pi-4", "raspberry-pi-5", "jetson-orin-nano", "flagship-phone", "laptop-8gb", "host"):
        assert required in names
    for p in list_devices():
        assert all(p.sources[f].strip() for f in FIGURES), p.name
        if p.name != "host":
            assert p.bandwidth_kind == "spec-peak" and not p.measured


def test_spec_bandwidths_follow_from_their_memory_specs():
    # transfer rate (MT/s) x bus width (bytes), as the sources state
    assert get_device("raspberry-pi-4").bandwidth_gbs == pytest.approx(3200 * 4 / 1000, abs=0.05)
    assert get_device("raspberry-pi-5").bandwidth_gbs == pytest.approx(4267 * 4 / 1000, abs=0.05)
    assert get_device("flagship-phone").bandwidth_gbs == pytest.approx(9600 * 8 / 1000, abs=0.05)
    assert get_device("laptop-8gb").bandwidth_gbs == pytest.approx(2 * 3200 * 8 / 1000, abs=0.05)


def test_host_is_measured():
    h = get_device("HOST")
    vm = psutil.virtual_memory()
    assert h.measured and h.bandwidth_kind == "measured-read"
    assert h.cores == usable_cpus() <= (os.cpu_count() or 1)
    assert h.ram_gb == pytest.approx(vm.total / 2**30)
    assert 0 < h.usable_ram_gb <= h.ram_gb
    assert h.bandwidth_gbs > 0.1
