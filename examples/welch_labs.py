"""Welch Labs' "Neural Networks Demystified": predict a test score from hours of sleep and study.

A 2-3-1 network (sigmoid hidden and output neurons, quadratic cost) on three examples, with
inputs divided by their maximum and scores by 100, as in the series. First a gradient check
(part 5: backprop against centred finite differences), then training (part 6).

    python examples/welch_labs.py --epochs 2000
"""
import argparse

import numpy as np

import fastmlp

X = np.array([[3, 5], [5, 1], [10, 2]], dtype=float)    # (hours of sleep, hours of study)
y = np.array([[75], [82], [93]], dtype=float)            # test score


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2000)
    args = parser.parse_args()
    X_scaled, y_scaled = X / X.max(axis=0), y / 100
    network = dict(hidden=(3,), activation="sigmoid", output_activation="sigmoid", loss="quadratic")

    result = fastmlp.check_gradients(X_scaled, y_scaled, **network)
    print(f"gradient check: largest relative error {result['max']:.1e} "
          f"({'passed' if result['max'] < 1e-7 else 'FAILED'})")

    # Welch Labs' cost is ½ Σ (y − ŷ)² over the three examples; fastmlp's is its mean, 1/3 of that.
    model = fastmlp.fit(X_scaled, y_scaled, **network, epochs=args.epochs, batch_size=3, learning_rate=3.0,
                        seed=0, dtype="float64")
    print(f"cost {model.history['loss'][0]:.5f} in epoch 1, {model.history['loss'][-1]:.5f} in epoch {args.epochs}")
    for (sleep, study), score, predicted in zip(X, y[:, 0], 100 * model.predict(X_scaled)[:, 0]):
        print(f"sleep {sleep:4.1f} h, study {study:3.1f} h: score {score:.0f}, predicted {predicted:.1f}")


if __name__ == "__main__":
    main()
