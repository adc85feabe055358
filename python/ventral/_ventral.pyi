"""Type hints of the Rust extension `ventral._ventral` (python/src/lib.rs)."""

from os import PathLike
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str
TOOLCHAIN: str

_Path = Union[str, PathLike]

def neural_predictivity(
    source: npt.NDArray[np.float32],
    source_stimulus_id: Sequence[str],
    target: npt.NDArray[np.float64],
    stimulus_id: Sequence[str],
    object_name: Sequence[str],
    repetition: Sequence[int],
    *,
    average: bool = True,
    n_components: int = 25,
    n_splits: int = 10,
    train_size: float = 0.9,
    seed: int = 1,
) -> Dict[str, Any]: ...
def internal_consistency(
    values: npt.NDArray[np.float64],
    stimulus_id: Sequence[str],
    repetition: Sequence[int],
    *,
    n_splits: int = 10,
    seed: int = 1,
) -> Dict[str, Any]: ...
def average_repetition(
    values: npt.NDArray[np.float64],
    stimulus_id: Sequence[str],
    object_name: Sequence[str],
    repetition: Sequence[int],
) -> Dict[str, Any]: ...
def i2n(
    probabilities: npt.NDArray[np.float64],
    stimulus_id: Sequence[str],
    choices: Sequence[str],
    trial_stimulus_id: Sequence[str],
    sample_obj: Sequence[str],
    dist_obj: Sequence[str],
    trial_choice: Sequence[str],
    truth: Sequence[str],
    *,
    repetitions: int = 2,
    seed: int = 0,
) -> Dict[str, Any]: ...
def ost(
    features: npt.NDArray[np.float64],
    bin_starts: Sequence[float],
    labels: Sequence[str],
    monkey_ost: Sequence[float],
    monkey_i1: Sequence[float],
    *,
    n_splits: int = 10,
    seed: int = 1,
    readout: str = "brain-score",
) -> Dict[str, Any]: ...
def find_assemblies(root: _Path) -> List[str]: ...
def status(
    workspace: _Path,
    pipeline: _Path,
    stages: Sequence[str] = ...,
    *,
    store: Optional[_Path] = None,
    profile: Optional[str] = None,
) -> str: ...
def run(
    workspace: _Path,
    pipeline: _Path,
    stages: Sequence[str] = ...,
    *,
    store: Optional[_Path] = None,
    profile: Optional[str] = None,
    jobs: Optional[int] = None,
    force: bool = False,
    lock_timeout_s: float = 60.0,
) -> str: ...
def sql(
    query: str,
    workspace: _Path,
    *,
    store: Optional[_Path] = None,
    paths: Sequence[_Path] = ...,
    remote: Optional[str] = None,
) -> Any: ...
def kind_identities() -> str: ...

class Assembly:
    def __init__(self, path: _Path) -> None: ...
    def meta_json(self) -> str: ...
    def coords(self, dim: str) -> Any: ...
    def coord_columns(self, dim: str) -> List[Tuple[str, Union[np.ndarray, List[Optional[str]]]]]: ...
    def read(self, ranges: Sequence[Tuple[int, int]]) -> np.ndarray: ...
