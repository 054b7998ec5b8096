"""The export outline and its parity comparer, without TensorFlow: one Parity for every exporter,
distinct errors for shape and tolerance naming every failing output; a failed gate writes nothing."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from runtime.errors import AttnError
from trainer.converter import (
    Converter,
    ExportError,
    Parity,
    ParityError,
    ParityShapeError,
    ParityToleranceError,
    prepare_out_dir,
)


def test_parity_reports_max_delta_over_batches():
    parity = Parity(1e-4)
    parity.compare("a", np.array([1.0, 2.0]), np.array([1.0, 2.00005]))
    parity.compare("a", np.array([1.0]), np.array([1.00002]))
    parity.compare("b", np.zeros((2, 3)), np.zeros((2, 3)))
    figures = parity.check()
    assert figures["a"] == pytest.approx(5e-5, rel=1e-3) and figures["b"] == 0.0


def test_parity_names_every_output_beyond_tolerance():
    parity = Parity(1e-4)
    parity.compare("probability", np.array([0.5]), np.array([0.6]))
    parity.compare("attention", np.array([0.0, np.nan]), np.array([0.0, 0.0]))
    parity.compare("fine", np.array([1.0]), np.array([1.0]))
    parity.compare("probability", np.array([0.5]), np.array([0.5]))  # a later good batch does not hide it
    with pytest.raises(ParityToleranceError) as caught:
        parity.check()
    message = str(caught.value)
    assert "output 'probability' differs from Keras by max |Δ| = 0.1 > 0.0001" in message
    assert "output 'attention' differs from Keras by max |Δ| = nan" in message and "'fine'" not in message


def test_parity_shape_error_is_distinct_and_names_every_output():
    parity = Parity()
    parity.compare("probability", np.zeros(3), np.zeros(4))
    parity.compare("attention", np.zeros((3, 2)), np.zeros((3, 5)))
    parity.compare("other", np.ones(2), np.zeros(2))  # beyond tolerance too, but the shapes are reported first
    shapes = r"'probability' has shape \(3,\), Keras gives \(4,\); output 'attention'"
    with pytest.raises(ParityShapeError, match=shapes):
        parity.check()
    assert issubclass(ParityShapeError, ParityError) and issubclass(ParityToleranceError, ParityError)
    assert issubclass(ParityError, ExportError) and issubclass(ExportError, AttnError)


def test_prepare_out_dir_refuses_an_existing_folder_without_force(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "model.onnx").write_bytes(b"x")
    with pytest.raises(ExportError, match="not empty; pass --force"):
        prepare_out_dir(tmp_path / "b", force=False)
    assert prepare_out_dir(tmp_path / "b", force=True) == tmp_path / "b"
    (tmp_path / "t" / "training").mkdir(parents=True)  # what training writes beside the bundle is kept
    assert prepare_out_dir(tmp_path / "t", force=False, keep=("training",)) == tmp_path / "t"
    (tmp_path / "f").write_text("")
    with pytest.raises(ExportError, match="not a folder"):
        prepare_out_dir(tmp_path / "f", force=True)


class _Identity(Converter):
    """A one-graph converter (y = x) whose gate passes or fails on request: tests the outline itself."""

    task = "sentiment"
    # the manifest must declare the sentiment contract's tensors (runtime.bundle.GRAPH_CONTRACT); the
    # graph itself is only loaded by the runtime, so an identity graph serves to test the outline
    graphs = {"model": {"file": "model.onnx", "inputs": [{"name": "tokens"}],
                        "outputs": [{"name": "probability"}, {"name": "attention"}]}}

    def __init__(self, fail: bool):
        class Config:
            def to_dict(self):
                return {"kind": "identity"}

        super().__init__(Config(), log=lambda _: None)
        self.fail = fail

    def convert(self):
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])])
        return {"model": helper.make_model(graph)}

    def gate(self, staging):
        assert (staging / "model.onnx").is_file() and staging.name.startswith(".staging-")
        parity = Parity()
        parity.compare("y", np.ones(2), np.ones(2) + (1.0 if self.fail else 0.0))
        return {f"max_abs_{k}": v for k, v in parity.check().items()}

    def manifest_fields(self):
        from trainer.tokenizer_fit import fit_tokenizer

        return {"labels": ["negative", "positive"], "max_len": 4, "attention": "none",
                "tokenizer": fit_tokenizer(["a b"], 5).to_dict()}


def test_outline_gates_before_anything_is_written(tmp_path):
    with pytest.raises(ParityToleranceError):
        _Identity(fail=True).export(tmp_path / "bad")
    assert list((tmp_path / "bad").iterdir()) == []
    manifest = _Identity(fail=False).export(tmp_path / "good")
    assert sorted(p.name for p in (tmp_path / "good").iterdir()) == ["manifest.json", "model.onnx"]  # no staging left
    assert onnx.load(tmp_path / "good" / "model.onnx").graph.node[0].op_type == "Identity"
    assert json.loads((tmp_path / "good" / "manifest.json").read_text()) == manifest
    assert manifest["graphs"]["model"]["sha256"] and manifest["parity"] == {"max_abs_y": 0.0}
    assert manifest["precision"] == "fp32" and manifest["model"] == {"kind": "identity"}
