"""The model: its directory and manifest, the preprocessing of a camera frame into its input
tensor, and the runtimes that run it (ONNX Runtime, LiteRT)."""

from edge.model.model import Model, Prediction, load_model

__all__ = ["Model", "Prediction", "load_model"]
