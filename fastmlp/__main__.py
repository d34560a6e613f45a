"""Command line: ``fastmlp train`` (the seed network on Fashion-MNIST by default), ``check-grad``, ``info``.

User mistakes end in one line on stderr and exit status 2, never a traceback.
"""
import argparse
import sys
import time

import numpy as np

import fastmlp
from fastmlp import datasets


def _sizes(text):
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer sizes such as 16,16, got {text!r}")


def load_dataset(name):
    """(X_train, y_train, X_test, y_test, description) with pixels scaled to [0, 1]."""
    if name == "fashion-mnist":
        X_train, y_train, X_test, y_test, source = datasets.load_fashion_mnist_or_small()
    elif name == "fashion-mnist-small":
        X_train, y_train, X_test, y_test = datasets.load_small_fashion_mnist()
        source = name
    elif name == "mnist":
        X_train, y_train = datasets.load_mnist(kind="train")
        X_test, y_test = datasets.load_mnist(kind="test")
        source = name
    else:
        raise ValueError(f"unknown dataset {name!r}: use fashion-mnist, fashion-mnist-small or mnist")
    scale = np.float32(1 / 255)
    return X_train * scale, y_train, X_test * scale, y_test, source


def train(args):
    if args.threads:
        fastmlp.set_num_threads(args.threads)
    X_train, y_train, X_test, y_test, source = load_dataset(args.dataset)
    layers = (X_train.shape[1],) + args.hidden + (len(np.unique(y_train)),)
    print(f"fastmlp {fastmlp.__version__}: {'-'.join(map(str, layers))} {args.activation} network, "
          f"{args.loss} cost, batch {args.batch_size}, learning rate {args.learning_rate}, "
          f"{args.dtype}, {fastmlp.get_num_threads()} thread(s), kernels {fastmlp.kernel_isa()}")
    print(f"data: {source}, {len(X_train)} training and {len(X_test)} test images")
    started = time.perf_counter()
    model = fastmlp.fit(
        X_train, y_train, hidden=args.hidden, activation=args.activation, loss=args.loss,
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        momentum=args.momentum, seed=args.seed, dtype=args.dtype, backend=args.backend,
        validation_data=(X_test, y_test), verbose=1)
    total = time.perf_counter() - started
    if "interrupted" in model.history:
        print(f"fastmlp: interrupted in epoch {model.history['interrupted']}; nothing written", file=sys.stderr)
        return 130
    seconds = model.history["seconds"]
    print(f"test accuracy {model.score(X_test, y_test):.4f}; training time {sum(seconds):.2f} s "
          f"(median {np.median(seconds):.3f} s per epoch, {total:.2f} s with evaluation)")
    if args.output:
        fastmlp.save(model, args.output)
        print(f"model written to {args.output}")


def check_grad(args):
    rng = np.random.default_rng(args.seed)
    X = rng.standard_normal((args.samples, args.features))
    y = rng.integers(0, args.classes, args.samples)
    result = fastmlp.check_gradients(X, y, hidden=args.hidden, activation=args.activation,
                                     loss=args.loss, seed=args.seed)
    for l, (w, b) in enumerate(zip(result["weights"], result["biases"])):
        print(f"layer {l + 1}: relative error weights {w:.2e}, biases {b:.2e}")
    ok = result["max"] < 1e-7
    print("gradient check " + ("passed" if ok else "FAILED") + f" (largest error {result['max']:.2e})")
    return 0 if ok else 1


def info(args):
    fastmlp.show_config()
    print(f"Fashion-MNIST installed: {datasets.fashion_mnist_available()}")


def parser():
    main = argparse.ArgumentParser(prog="fastmlp", description=__doc__.splitlines()[0])
    main.add_argument("--version", action="version", version=f"fastmlp {fastmlp.__version__}")
    commands = main.add_subparsers(dest="command", required=True)

    def network_arguments(command, hidden):
        command.add_argument("--hidden", type=_sizes, default=hidden,
                             help=f"hidden layer sizes (default {','.join(map(str, hidden))})")
        command.add_argument("--activation", default="sigmoid", help="sigmoid, tanh, relu or identity")
        command.add_argument("--loss", default="quadratic", help="quadratic, cross_entropy or log_loss")
        command.add_argument("--seed", type=int, default=0)

    run = commands.add_parser("train", help="train a network and report test accuracy",
                              description="Train on a dataset; defaults: the 784-16-16-10 seed network.")
    network_arguments(run, (16, 16))
    run.add_argument("--dataset", default="fashion-mnist",
                     help="fashion-mnist (installed copy, else the small one shipped), fashion-mnist-small, mnist")
    run.add_argument("--epochs", type=int, default=10)
    run.add_argument("--batch-size", type=int, default=100)
    run.add_argument("--learning-rate", type=float, default=3.0)
    run.add_argument("--momentum", type=float, default=0.0)
    run.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    run.add_argument("--backend", default="compiled", choices=["compiled", "numpy"])
    run.add_argument("--threads", type=int, default=None, help="number of threads (default: all cores)")
    run.add_argument("--output", help="save the trained model to this .npz file")
    run.set_defaults(handler=train)

    grad = commands.add_parser("check-grad", help="gradient check against finite differences")
    network_arguments(grad, (5,))
    grad.add_argument("--samples", type=int, default=10)
    grad.add_argument("--features", type=int, default=4)
    grad.add_argument("--classes", type=int, default=3)
    grad.set_defaults(handler=check_grad)

    commands.add_parser("info", help="version, build flags, kernel levels, threads").set_defaults(handler=info)
    return main


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except (ValueError, TypeError, OSError, FloatingPointError) as error:
        print(f"fastmlp: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fastmlp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
