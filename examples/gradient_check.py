"""Check backpropagation against centred finite differences, for every activation and cost.

For each parameter θ the numerical gradient is (C(θ + ε) − C(θ − ε)) / 2ε; fastmlp.check_gradients
reports ‖g_backprop − g_numerical‖ / ‖g_backprop + g_numerical‖ per layer, about 1e-8 or less when
backprop is right. Both backends (compiled kernels and NumPy twin) are checked. Exit status 1 if
any check fails.

    python examples/gradient_check.py
"""
import sys

import numpy as np

import fastmlp

# (hidden activation, output activation, cost, targets)
CASES = [
    ("sigmoid", "sigmoid", "quadratic", "values in (0, 1)"),
    ("tanh", "identity", "quadratic", "real values"),
    ("relu", "softmax", "log_loss", "class labels"),
    ("sigmoid", "sigmoid", "cross_entropy", "values in (0, 1)"),
]


def main():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 4))
    targets = {"values in (0, 1)": rng.uniform(0.05, 0.95, (8, 3)), "real values": rng.standard_normal((8, 3)),
               "class labels": np.arange(8) % 3}
    failed = 0
    for activation, output_activation, loss, kind in CASES:
        for backend in ("compiled", "numpy"):
            result = fastmlp.check_gradients(X, targets[kind], hidden=(5, 4), activation=activation,
                                             output_activation=output_activation, loss=loss, backend=backend)
            ok = result["max"] < 1e-7
            failed += not ok
            print(f"4-5-4-3 {activation:7s} -> {output_activation:8s} {loss:13s} {backend:8s} "
                  f"largest relative error {result['max']:.1e}  {'ok' if ok else 'FAILED'}")
    print("all gradient checks passed" if not failed else f"{failed} gradient checks FAILED")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
