"""Write fastmlp/data/fashion-mnist-small.npz: a stratified, seeded subset of Fashion-MNIST.

Reads Debian's files (package ``dataset-fashion-mnist``, in /usr/share/datasets/fashion-mnist) or
those in ``--source``, and keeps ``--train-per-class`` training and ``--test-per-class`` test
images of each class, drawn with ``np.random.default_rng(--seed)`` and then shuffled. The arrays
are X_train, y_train, X_test, y_test (uint8, images flattened to 784 columns) plus
train_indices and test_indices, the rows taken from the full splits.

Usage: python tools/make_small_dataset.py [--source DIR] [--output FILE]
"""

import argparse
import importlib.util
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _import_datasets():
    # Load fastmlp/datasets.py by path: it needs only NumPy, and importing the fastmlp package
    # would require the compiled extension to be built.
    path = ROOT / "fastmlp" / "datasets.py"
    spec = importlib.util.spec_from_file_location("fastmlp_datasets", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stratified_indices(labels, per_class, rng):
    """Draw ``per_class`` indices of each label without replacement, in random order."""
    chosen = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
              for c in range(10)]
    return rng.permutation(np.concatenate(chosen))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--output", default=ROOT / "fastmlp" / "data" / "fashion-mnist-small.npz")
    parser.add_argument("--train-per-class", type=int, default=500)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    datasets = _import_datasets()
    rng = np.random.default_rng(args.seed)
    arrays = {}
    for kind, per_class in (("train", args.train_per_class), ("test", args.test_per_class)):
        X, y = datasets.load_fashion_mnist(args.source, kind)
        indices = stratified_indices(y, per_class, rng)
        arrays[f"X_{kind}"], arrays[f"y_{kind}"] = X[indices], y[indices]
        arrays[f"{kind}_indices"] = indices.astype(np.uint16)   # < 60000 fits
    np.savez_compressed(args.output, **arrays)
    print(f"wrote {args.output}: {Path(args.output).stat().st_size:,} bytes, "
          f"{len(arrays['y_train'])} train + {len(arrays['y_test'])} test images")


if __name__ == "__main__":
    main()
