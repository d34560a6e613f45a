"""Train, save to a file, load it back and check the loaded model predicts exactly the same.

fastmlp.save writes a versioned, checksummed .npz file (no pickle); fastmlp.load rejects a file
that was edited or damaged.

    python examples/save_and_load.py --epochs 5 --out model.npz
"""
import argparse
import os
import tempfile

import numpy as np

import fastmlp
from fastmlp import datasets


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", help="where to save the model (default: a temporary directory)")
    args = parser.parse_args()
    X_train, y_train, X_test, y_test = datasets.load_small_fashion_mnist()
    X_train, X_test = X_train / 255, X_test / 255
    model = fastmlp.fit(X_train, y_train, epochs=args.epochs, seed=0)

    with tempfile.TemporaryDirectory() as directory:
        path = args.out or os.path.join(directory, "seed_network.npz")
        fastmlp.save(model, path)
        loaded = fastmlp.load(path)
        print(f"saved {path} ({os.path.getsize(path)} bytes) and loaded it: {loaded.layer_sizes} "
              f"{loaded.layer_activations[0]} network, {loaded.loss} cost, classes {loaded.classes_.tolist()}")
    same = np.array_equal(loaded.predict_proba(X_test), model.predict_proba(X_test))
    print(f"test accuracy {model.score(X_test, y_test):.4f} before, {loaded.score(X_test, y_test):.4f} after; "
          f"identical outputs: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
