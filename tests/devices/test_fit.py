import pytest

from edgewise.devices import (EFFICIENCY, PRECISIONS, RUNTIME_OVERHEAD_MB, DeviceProfile, estimate_device_tps, fit,
                              fits_device, get_device)
from edgewise.devices.profiles import FIGURES
from edgewise.errors import EdgewiseError

MiB = 2**20


def test_fit_arithmetic_hand_checked():
    """SmolLM2-135M, int4 (5 bits per weight, fp32 KV), Raspberry Pi 5, 1024 tokens, worked out by hand."""
    r = fit("smollm2-135m", "raspberry-pi-5", context=1024)
    row = r.row("int4")
    weights = 134_515_008 * 5 / 8  # = 84,071,880 bytes; tied, so lookup and head share one 4-bit table
    kv = 2 * 30 * 3 * 64 * 1024 * 4  # = 47,185,920 bytes
    assert row.weights_mb == pytest.approx(weights / MiB) == pytest.approx(80.177, abs=1e-3)
    assert row.kv_cache_mb == pytest.approx(45.0)
    assert row.memory_mb == pytest.approx(80.177 + 45.0 + 150.0, abs=1e-3)
    # 0.6 x 17.1 GB/s / 84.07 MB per token
    assert row.est_tokens_per_s == pytest.approx(0.6 * 17.1e9 / weights) == pytest.approx(122.04, abs=0.01)
    assert row.fits and r.efficiency == EFFICIENCY == 0.6 and r.overhead_mb == RUNTIME_OVERHEAD_MB


def test_int8_keeps_a_full_precision_embedding_copy():
    # 9 bits for every matmul weight plus an fp32 lookup table: 151,329,384 + 113,246,208 bytes. The
    # onnxruntime-genai int8 build of this model is 266.8 MB of initializers, 0.8% more (docs/devices.md).
    row = fit("smollm2-135m", "host", context=128).row("int8")
    assert row.weights_mb * MiB == pytest.approx(134_515_008 * 9 / 8 + 49152 * 576 * 4)
    assert row.bytes_per_token_mb * MiB == pytest.approx(134_515_008 * 9 / 8)  # the fp32 table is not streamed


def test_untied_model_streams_its_head_but_not_its_embedding():
    r = fit("tinyllama-1.1b", "raspberry-pi-5")
    m = r.model
    assert r.context == 2048  # default 4096, capped at the model's trained context
    fp16 = r.row("fp16")
    assert fp16.weights_mb * MiB == pytest.approx(m.params * 2)
    assert fp16.bytes_per_token_mb * MiB == pytest.approx((m.params - m.embed_params) * 2)


def test_public_pi5_measurement_is_within_the_estimate_band():
    # Anchor: TinyLlama-1.1B q8_0 on a Raspberry Pi 5 runs at about 9 tokens/s (J. Tunney; geerlingguy/ai-benchmarks
    # issue 7). The estimate must land within 25% of it.
    est = fit("tinyllama-1.1b", "raspberry-pi-5", precisions=["q8_0"]).row("q8_0").est_tokens_per_s
    assert est == pytest.approx(9, rel=0.25)


def test_fits_flags_ram_and_storage():
    r = fit("phi-3-mini", "raspberry-pi-4")
    assert not r.row("fp32").fits_ram and r.row("q4_k_m").fits
    tiny_disk = DeviceProfile(name="tiny", description="", cores=1, ram_gb=64, usable_ram_gb=64, storage_gb=1,
                              bandwidth_gbs=10, bandwidth_kind="spec-peak", sources={f: "test" for f in FIGURES})
    row = fit("phi-3-mini", tiny_disk).row("fp16")
    assert row.fits_ram and not row.fits_storage and not row.fits


def test_every_precision_is_reported_and_memory_shrinks_with_bits():
    r = fit("smollm2-360m", "laptop-8gb")
    assert [x.precision for x in r.rows] == list(PRECISIONS)
    assert r.row("fp32").weights_mb > r.row("fp16").weights_mb > r.row("int4").weights_mb
    assert r.row("int4").est_tokens_per_s > r.row("fp32").est_tokens_per_s
    d = r.as_dict()
    assert d["rows"][0]["fits"] in (True, False) and "estimate" in d["estimate_note"]


@pytest.mark.parametrize("kw, needle", [
    (dict(context=0), "positive"),
    (dict(context=9000), "trained context of 8192"),
    (dict(precisions=["int3"]), "unknown precision"),
    (dict(efficiency=1.5), "efficiency"),
])
def test_fit_rejects_bad_arguments(kw, needle):
    with pytest.raises(EdgewiseError, match=needle):
        fit("smollm2-135m", "raspberry-pi-5", **kw)


def test_estimate_device_tps_scales_by_bandwidth():
    # 20 tokens/s measured on a 10 GB/s host projects to 20 x 17.1 / 10 on a Pi 5
    assert estimate_device_tps(20.0, 10.0, "raspberry-pi-5") == pytest.approx(34.2)
    assert estimate_device_tps(20.0, 10.0, get_device("raspberry-pi-4")) == pytest.approx(25.6)
    with pytest.raises(EdgewiseError):
        estimate_device_tps(20.0, 0.0, "raspberry-pi-5")
    with pytest.raises(EdgewiseError, match="unknown device"):
        estimate_device_tps(20.0, 10.0, "pi")


def test_fits_device_compares_peak_rss_with_usable_ram():
    assert fits_device(6656, "raspberry-pi-5")  # exactly 6.5 GiB
    assert not fits_device(6657, "raspberry-pi-5")
    assert fits_device(3000, "flagship-phone") and not fits_device(5000, "flagship-phone")
    with pytest.raises(EdgewiseError):
        fits_device(-1, "laptop-8gb")
