"""LiteRT backend on real MediaPipe .tflite models (skips without ai-edge-litert or the mediapipe wheel)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert.interpreter", reason="needs the litert extra: pip install -e '.[litert]'")

from edgewise.errors import CorruptModelError, EdgewiseError, UnsupportedModelError  # noqa: E402
from edgewise.models.source import TFLITE, ModelSource  # noqa: E402
from edgewise.runtime.backend import BACKENDS  # noqa: E402
from edgewise.runtime.litert_backend import load_litert  # noqa: E402


def _mediapipe_model(rel: str) -> Path:
    # Find the file without importing mediapipe: it is installed with --no-deps for its models only.
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("needs the mediapipe 0.10.14 wheel (pip install --no-deps mediapipe==0.10.14)")
    p = Path(list(spec.submodule_search_locations)[0]) / "modules" / rel
    if not p.is_file():
        pytest.skip(f"{rel} not in this mediapipe wheel")
    return p


def _source(path: Path) -> ModelSource:
    return ModelSource(ref=str(path), kind="tflite", path=path, task=TFLITE, name=path.stem)


FACE = "face_detection/face_detection_short_range.tflite"
SELFIE = "selfie_segmentation/selfie_segmentation.tflite"


def test_registered():
    assert "litert" in BACKENDS


def test_face_detector_runs_with_real_shapes():
    m = load_litert(_source(_mediapipe_model(FACE)), "native", 1)
    assert [(s.name, s.shape, s.dtype.name) for s in m.inputs] == [("input", (1, 128, 128, 3), "float32")]
    x = np.random.default_rng(0).uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
    out = m.run({"input": x})
    assert {k: v.shape for k, v in out.items()} == {"regressors": (1, 896, 16), "classificators": (1, 896, 1)}
    assert all(np.isfinite(v).all() for v in out.values())
    # Deterministic, and the output actually depends on the input.
    again = m.run({"input": x})
    np.testing.assert_array_equal(out["regressors"], again["regressors"])
    zero = m.run({"input": np.zeros_like(x)})
    assert not np.allclose(zero["regressors"], out["regressors"])
    assert m.size_bytes() == _mediapipe_model(FACE).stat().st_size
    assert m.output_details()[0]["dtype"] == "float32"


def test_segmentation_mask_is_a_probability():
    m = load_litert(_source(_mediapipe_model(SELFIE)), "native", 1)
    out = m.run({"input_1": np.zeros((1, 256, 256, 3), np.float32)})
    (mask,) = out.values()
    assert mask.shape == (1, 256, 256, 1)
    assert mask.min() >= 0.0 and mask.max() <= 1.0  # sigmoid output


def test_bad_inputs_are_one_line_errors():
    m = load_litert(_source(_mediapipe_model(FACE)), "native", 1)
    with pytest.raises(EdgewiseError, match="inputs must be exactly"):
        m.run({"image": np.zeros((1, 128, 128, 3), np.float32)})
    with pytest.raises(EdgewiseError, match="needs shape"):
        m.run({"input": np.zeros((1, 64, 64, 3), np.float32)})
    with pytest.raises(EdgewiseError, match="needs float32"):
        m.run({"input": np.zeros((1, 128, 128, 3), np.complex64)})


def test_truncated_tflite_is_a_clean_error(tmp_path):
    data = _mediapipe_model(FACE).read_bytes()
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptModelError, match="truncated"):
        load_litert(_source(cut), "native", 1)
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(CorruptModelError):
        load_litert(_source(junk), "native", 1)


def test_custom_op_model_is_unsupported_not_a_crash():
    p = _mediapipe_model("face_landmark/face_landmark_with_attention.tflite")
    with pytest.raises(UnsupportedModelError, match="Landmarks2TransformMatrix"):
        load_litert(_source(p), "native", 1)


def test_wrong_precision_and_task():
    p = _mediapipe_model(FACE)
    with pytest.raises(EdgewiseError, match="as shipped"):
        load_litert(_source(p), "int4", 1)
    with pytest.raises(UnsupportedModelError):
        load_litert(ModelSource(ref="x", kind="onnx", path=p, task="encoder", name="x"), "native", 1)


def test_a_graph_is_its_own_type_and_the_text_runtime_refuses_it():
    from edgewise.runtime import generate
    from edgewise.runtime.api import embed, forward_logits
    from edgewise.runtime.backend import LoadedModel, capability

    m = load_litert(_source(_mediapipe_model(FACE)), "native", 1)
    assert not isinstance(m, LoadedModel)
    assert not any(hasattr(m, a) for a in ("tokenizer", "decoder", "encoder", "context_length"))
    for call in (lambda: generate(m, "hi"), lambda: embed(m, ["hi"]), lambda: forward_logits(m, [1, 2])):
        with pytest.raises(EdgewiseError, match="litert graph: it has no text side"):
            call()
    assert capability(m, "bits_per_weight") is None and m.name == m.source.name
