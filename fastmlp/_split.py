"""Holding out rows: one random split, stratified by class when asked."""
import numpy as np


def split_rows(n_samples, fraction, rng, strata=None, keep_one=False):
    """(kept, held) sorted row indices: ceil(fraction · n) random rows held out, of every class
    when ``strata`` (a class code per row) is given so that each keeps its share; ``keep_one``:
    never a class's last row."""
    if strata is None:
        groups = [np.arange(n_samples)]
    else:
        groups = [np.flatnonzero(strata == code) for code in np.unique(strata)]
    counts = [int(np.ceil(fraction * len(group))) for group in groups]
    if keep_one:
        counts = [min(count, len(group) - 1) for count, group in zip(counts, groups)]
    held = np.sort(np.concatenate([rng.permutation(group)[:count] for group, count in zip(groups, counts)]))
    return np.setdiff1d(np.arange(n_samples), held), held.astype(np.intp)
