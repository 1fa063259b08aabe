"""Weighted histogram binning of scikit-learn 1.9, computed in one pass per feature.

:class:`~sklearn.ensemble.HistGradientBoostingClassifier` fitted with
``sample_weight`` (version 4 keeps one normal day in four, weighted four)
finds each feature's bin thresholds with one weighted percentile per bin
edge: 254 sorts of the column per feature, 55 features. That was a third of
the velo build (about 19 s of each of its three fits, against 1.5 s without
weights). ``_weighted_percentile`` takes all the ranks at once and sorts the
column once; the thresholds are the same numbers (``tests/demos/test_velo.py``
compares the two on weighted columns with ties and missing values, so a
scikit-learn upgrade that changes the private function fails there, not in a
silently different model).

:func:`one_sort_binning` swaps scikit-learn's function for this one while a
block runs (the build's fits only; nothing else fits during a build).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.ensemble._hist_gradient_boosting import binning as sk_binning
from sklearn.utils.stats import _weighted_percentile

#: scikit-learn's own function (the unweighted case, and what the tests compare with).
SKLEARN_FIND = sk_binning._find_binning_thresholds


def find_binning_thresholds(
    col_data: np.ndarray, max_bins: int, sample_weight: np.ndarray | None = None
) -> np.ndarray:
    """scikit-learn 1.9.1's ``_find_binning_thresholds``, the weighted percentiles in one call."""
    if sample_weight is None:
        return np.asarray(SKLEARN_FIND(col_data, max_bins))
    missing_mask = np.isnan(col_data)
    if missing_mask.any():
        col_data = col_data[~missing_mask]
        sample_weight = sample_weight[~missing_mask]
    nnz_sw = sample_weight != 0
    col_data = col_data[nnz_sw]
    sample_weight = sample_weight[nnz_sw]
    sort_idx = np.argsort(col_data)
    col_data = col_data[sort_idx]
    sample_weight = sample_weight[sort_idx]
    distinct_values = np.unique(col_data).astype(sk_binning.X_DTYPE)
    if len(distinct_values) == 1:
        return np.asarray([])
    if len(distinct_values) <= max_bins:
        bin_thresholds = sliding_window_view(distinct_values, 2).mean(axis=1)
    else:
        percentiles = np.linspace(0, 100, num=max_bins + 1)[1:-1]
        bin_thresholds = np.asarray(
            _weighted_percentile(col_data, sample_weight, percentiles, average=True)
        ).reshape(-1)
        assert bin_thresholds.shape[0] == max_bins - 1
    unique_bin_values = np.unique(bin_thresholds)
    if unique_bin_values.shape[0] != bin_thresholds.shape[0]:
        bin_thresholds = unique_bin_values
    np.clip(bin_thresholds, a_min=None, a_max=sk_binning.ALMOST_INF, out=bin_thresholds)
    return np.asarray(bin_thresholds)


@contextmanager
def one_sort_binning() -> Iterator[None]:
    """While the block runs, histogram gradient boosting bins with :func:`find_binning_thresholds`."""
    patched: Any = find_binning_thresholds
    sk_binning._find_binning_thresholds = patched
    try:
        yield
    finally:
        sk_binning._find_binning_thresholds = SKLEARN_FIND
