"""One frame's way through the model, in three steps that run on three threads:

1. :meth:`Analyzer.prepare` — the model's view of the frame (one C++ pass over the camera
   frame: crop, resize, colour), the model's input tensor made from that small view, and the
   frame statistics measured on it;
2. :meth:`Analyzer.infer` — the runtime (ONNX Runtime or LiteRT), nothing else, so that the
   thread that owns the model spends its time in it;
3. :meth:`Analyzer.judge` — calibrated confidence, OOD scores, the gate and the policy.

Measuring the statistics on the view, not the camera frame, is what ``edge calibrate`` does:
a 1080p frame and a 28×28 calibration image are judged at the same scale.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from edge._native import _core
from edge.judge.calibration import Calibration
from edge.judge.gate import STATISTICS
from edge.judge.ood import OodReference
from edge.model import Model, Prediction
from edge.model.preprocess import Preprocessor, Src
from edge.runtime.capture import Frame
from edge.runtime.decision import Policy, Verdict

TOP_K = 3


@dataclass(slots=True)
class Work:
    """A frame between steps, and what each step measured (seconds)."""

    frame: Frame
    tensor: npt.NDArray[Any]
    stats: dict[str, float]
    dhash: int
    timings: dict[str, float]
    prediction: Prediction | None = None


@dataclass(frozen=True, slots=True)
class Result:
    frame: Frame
    verdict: Verdict
    class_id: int
    label: str
    confidence: float  # calibrated probability of ``label``
    top_k: tuple[tuple[str, float], ...]
    scores: Mapping[str, float]
    stats: Mapping[str, float]
    dhash: int
    timings: dict[str, float] = field(compare=False)

    @property
    def decision(self) -> str:
        return self.verdict.decision

    @property
    def reason(self) -> str:
        return self.verdict.reason

    def to_json(self, drift: str = "ok") -> dict[str, Any]:
        """The results line of this frame (``--results``)."""
        return {
            "frame": self.frame.id,
            "t": round(self.frame.t, 6),
            "decision": self.verdict.decision,
            "label": self.label,
            "confidence": round(self.confidence, 6),
            "reason": self.verdict.reason,
            "scores": {k: round(v, 6) for k, v in self.scores.items()},
            "stats": {k: round(v, 6) for k, v in self.stats.items()},
            "top_k": [[label, round(p, 6)] for label, p in self.top_k],
            "drift": drift,
        }


class Analyzer:
    """The per-frame work of ``edge run`` for one model; each step is called from one thread
    at a time (prepare, infer and judge may run on three different threads)."""

    def __init__(
        self,
        model: Model,
        policy: Policy,
        calibration: Calibration | None,
        reference: OodReference | None,
    ) -> None:
        self.model = model
        self.policy = policy
        self.temperature = calibration.temperature if calibration is not None else 1.0
        self.scorer = reference.scorer() if reference is not None else None
        spec = model.input
        # The view keeps the model's colour (grey or RGB): its statistics are those of the
        # calibration's grey view, and the model's tensor is made from it without a second
        # pass over the camera frame.
        self._view_color: Src = "gray" if spec.color == "gray" else "rgb"
        self._views: dict[Src, Preprocessor] = {
            src: Preprocessor(
                size=spec.size,
                src=src,
                dst=self._view_color,
                resize=spec.resize,
                fit=spec.fit,
            )
            for src in ("bgr", "gray")
        }
        self._to_tensor = model.preprocessor_for(self._view_color)

    def prepare(self, frame: Frame) -> Work:
        t0 = time.perf_counter()
        view = self._views["gray" if frame.image.ndim == 2 else "bgr"](frame.image)[0]
        tensor = self._to_tensor(view)
        s = _core.frame_stats(view, src=self._view_color)
        stats = {name: float(getattr(s, name)) for name in STATISTICS}
        t1 = time.perf_counter()
        return Work(
            frame, tensor, stats, int(s.dhash), {"decode": frame.decode, "preprocess": t1 - t0}
        )

    def infer(self, work: Work) -> Work:
        t0 = time.perf_counter()
        work.prediction = self.model.run(work.tensor)
        work.timings["inference"] = time.perf_counter() - t0
        return work

    def judge(self, work: Work) -> Result:
        prediction = work.prediction
        assert prediction is not None, "judge() before infer()"
        t0 = time.perf_counter()
        logit, probabilities = _core.logit_scores(prediction.logits, self.temperature)
        scores = {"msp": logit.msp, "energy": logit.energy, "entropy": logit.entropy}
        if self.scorer is not None:
            mahalanobis, _, knn = self.scorer.score(prediction.embedding)
            scores["mahalanobis"], scores["knn"] = mahalanobis, knn
        labels = self.model.labels
        top = _top_k(probabilities, TOP_K)
        top_k = tuple((labels[i], float(probabilities[i])) for i in top)
        class_id = int(top[0])
        label, confidence = top_k[0]
        t1 = time.perf_counter()
        verdict = self.policy.decide({**work.stats, **scores}, label, confidence, work.dhash)
        if verdict.gate_score is not None:
            scores["gate"] = verdict.gate_score
        t2 = time.perf_counter()
        work.timings["scores"] = t1 - t0
        work.timings["policy"] = t2 - t1
        return Result(
            work.frame,
            verdict,
            class_id,
            label,
            confidence,
            top_k,
            scores,
            work.stats,
            work.dhash,
            work.timings,
        )


def _top_k(values: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.intp]:
    """Indices of the ``k`` largest values, largest first; a partition, not a sort of all
    (a thousand classes sort in twice the time)."""
    k = min(k, len(values))
    top = np.argpartition(values, -k)[-k:]
    return top[np.argsort(values[top])[::-1]]
