"""The seed network of 3Blue1Brown and Nielsen, 784-16-16-10, trained on Fashion-MNIST.

Sigmoid neurons, quadratic cost, mini-batches of 100, learning rate 3.0 (fastmlp.fit's defaults).
Uses the full Fashion-MNIST when it is installed (Debian's dataset-fashion-mnist), else the
small subset shipped with fastmlp. With --plot DIR (needs matplotlib: pip install fastmlp[plot])
it also writes the loss curves, the confusion matrix, the first layer's weights as 28x28 images
and misclassified examples as PNGs.

    python examples/seed_network.py --epochs 10 --plot pictures
"""
import argparse
import os

import fastmlp
from fastmlp import datasets


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--plot", metavar="DIR", help="write PNG pictures into DIR")
    args = parser.parse_args()

    X_train, y_train, X_test, y_test, source = datasets.load_fashion_mnist_or_small()
    X_train, X_test = X_train / 255, X_test / 255
    print(f"data: {source}, {len(X_train)} training and {len(X_test)} test images")

    model = fastmlp.fit(X_train, y_train, hidden=(16, 16), activation="sigmoid", loss="quadratic",
                        epochs=args.epochs, batch_size=100, learning_rate=3.0, seed=0,
                        validation_data=(X_test, y_test), verbose=1)
    print(f"network {'-'.join(map(str, model.layer_sizes))}: test accuracy {model.score(X_test, y_test):.4f}, "
          f"{sum(model.history['seconds']):.2f} s of training")

    if args.plot:
        from fastmlp import plots
        os.makedirs(args.plot, exist_ok=True)
        predicted = model.predict(X_test)
        written = [
            plots.plot_history(model.history, os.path.join(args.plot, "history.png")),
            plots.plot_confusion_matrix(y_test, predicted, range(10), os.path.join(args.plot, "confusion.png"),
                                        class_names=datasets.CLASS_NAMES),
            plots.plot_first_layer(model.weights[0], os.path.join(args.plot, "first_layer.png")),
            plots.plot_misclassified(X_test, y_test, predicted, os.path.join(args.plot, "misclassified.png"),
                                     class_names=datasets.CLASS_NAMES),
        ]
        print("pictures: " + ", ".join(written))


if __name__ == "__main__":
    main()
