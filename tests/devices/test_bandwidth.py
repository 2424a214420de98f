import time

import pytest

from edgewise.devices import achieved_bandwidth_ratio, host_bandwidth, probe_bandwidth
from edgewise.devices.bandwidth import default_buffer_mb, last_level_cache_bytes
from edgewise.errors import EdgewiseError


def test_probe_returns_a_plausible_positive_number_quickly():
    t = time.perf_counter()
    r = probe_bandwidth(buffer_mb=64, budget_s=0.2)
    assert time.perf_counter() - t < 5
    # Any machine this runs on streams RAM at more than 0.1 GB/s and less than 2 TB/s.
    assert 0.1 < r.gbs < 2000
    assert r.passes >= 3 and r.buffer_mb == 64 and r.threads >= 1


def test_host_probe_is_cached_in_process():
    assert host_bandwidth() is host_bandwidth()


def test_default_buffer_outgrows_the_cache_but_stays_bounded():
    import psutil

    llc = last_level_cache_bytes()
    mb = default_buffer_mb()
    assert 16 <= mb <= 1024
    roomy = psutil.virtual_memory().available // 2**20 // 8 >= 1024  # only low free memory may shrink it
    if roomy:
        assert mb >= 256 and (llc is None or mb * 2**20 >= min(4 * llc, 1024 * 2**20))


def test_achieved_bandwidth_ratio_arithmetic():
    # 100 MB per token at 50 tokens/s is 5 GB/s: half of a 10 GB/s machine
    assert achieved_bandwidth_ratio(100e6, 50, 10) == pytest.approx(0.5)
    with pytest.raises(EdgewiseError):
        achieved_bandwidth_ratio(0, 50, 10)


def test_probe_rejects_nonsense_arguments():
    with pytest.raises(EdgewiseError):
        probe_bandwidth(buffer_mb=0)
