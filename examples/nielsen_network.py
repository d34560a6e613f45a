"""Nielsen's network from chapter 1 of "Neural Networks and Deep Learning": 784-30-10.

Sigmoid neurons, quadratic cost, weights and biases drawn from N(0, 1) (init="normal"), mini-batches
of 10, learning rate 3.0: net.SGD(training_data, 30, 10, 3.0, test_data=test_data). Nielsen's MNIST
split (50,000 training, 10,000 validation, 10,000 test images) when MNIST is on this machine (or with
--download); otherwise Fashion-MNIST, or the small subset shipped with fastmlp, so it always runs.

    python examples/nielsen_network.py --epochs 30
"""
import argparse

import fastmlp
from fastmlp import datasets


def load(download):
    """(X_train, y_train, X_test, y_test, name), pixels in [0, 1]."""
    try:
        (X_train, y_train), _, (X_test, y_test) = datasets.load_mnist_nielsen(download=download)
        name = "MNIST, Nielsen's 50k/10k/10k split"
    except (OSError, ValueError):
        X_train, y_train, X_test, y_test, name = datasets.load_fashion_mnist_or_small()
        name += " (MNIST not found; use --download to fetch it)"
    return X_train / 255, y_train, X_test / 255, y_test, name


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--download", action="store_true", help="download MNIST if it is not found")
    args = parser.parse_args()
    X_train, y_train, X_test, y_test, name = load(args.download)
    print(f"data: {name}, {len(X_train)} training and {len(X_test)} test images")
    model = fastmlp.fit(X_train, y_train, hidden=(30,), activation="sigmoid", loss="quadratic", init="normal",
                        epochs=args.epochs, batch_size=10, learning_rate=3.0, seed=0,
                        validation_data=(X_test, y_test))
    # Nielsen prints "Epoch j: correct / total" after every epoch.
    for epoch, accuracy in enumerate(model.history["val_accuracy"]):
        print(f"Epoch {epoch}: {round(accuracy * len(X_test))} / {len(X_test)}")


if __name__ == "__main__":
    main()
