from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

def active_isa() -> str: ...

class Preprocessor:
    def __init__(
        self,
        *,
        size: tuple[int, int],
        src: str = ...,
        dst: str = ...,
        layout: str = ...,
        dtype: str = ...,
        resize: str = ...,
        mean: float | Sequence[float] | None = ...,
        std: float | Sequence[float] | None = ...,
        scale: float | None = ...,
        zero_point: float | None = ...,
        roi: tuple[int, int, int, int] | None = ...,
        fit: str = ...,
        pad_value: float = ...,
    ) -> None: ...
    def __call__(
        self, frame: npt.NDArray[np.uint8], out: npt.NDArray[np.generic] | None = None
    ) -> npt.NDArray[np.generic]: ...
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def dtype(self) -> np.dtype[np.generic]: ...
