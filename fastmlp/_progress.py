"""Progress of a long fit: one line per epoch, and a live line inside epochs on a terminal.

Quiet with ``verbose=0``. When the output is not a terminal (a log file, CI) only the per-epoch
lines are written, so logs are not flooded.
"""
import sys
import time

import numpy as np


class Progress:
    """Reports epochs (or L-BFGS iterations: ``unit``) up to ``last_epoch``, of ``n_samples``
    samples each, to ``stream`` (stdout)."""

    REDRAW_SECONDS = 0.25

    def __init__(self, verbose, last_epoch, n_samples, stream=None, unit="epoch"):
        self.verbose, self.last_epoch, self.n_samples, self.unit = verbose, last_epoch, n_samples, unit
        self.stream = stream or sys.stdout
        self.live = bool(verbose) and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.last_draw = 0.0
        self.epoch_seconds = []

    def batch(self, epoch, done, started):
        """After a mini-batch: redraw the live line at most every REDRAW_SECONDS."""
        if not self.live:
            return
        now = time.perf_counter()
        if now - self.last_draw < self.REDRAW_SECONDS:
            return
        self.last_draw = now
        done = min(done, self.n_samples)
        rate = done / max(now - started, 1e-9)
        self.stream.write(f"\r{self.unit} {epoch}/{self.last_epoch}: {done}/{self.n_samples} samples, "
                          f"{rate:,.0f} samples/s\033[K")
        self.stream.flush()

    def epoch(self, metrics):
        """After an epoch: its line with loss, validation metrics, speed and time left."""
        if not self.verbose:
            return
        seconds = metrics["seconds"]
        self.epoch_seconds.append(seconds)
        left = (self.last_epoch - metrics["epoch"]) * float(np.median(self.epoch_seconds))
        line = f"{self.unit} {metrics['epoch']}/{self.last_epoch}: loss {metrics['loss']:.4f}"
        for key in ("val_loss", "val_accuracy", "val_r2"):
            if key in metrics:
                line += f", {key} {metrics[key]:.4f}"
        line += f", {self.n_samples / max(seconds, 1e-9):,.0f} samples/s, {seconds:.3f} s, {left:.1f} s left"
        self.message(line)

    def message(self, text):
        if self.verbose:
            self.stream.write(("\r" if self.live else "") + text + ("\033[K" if self.live else "") + "\n")
            self.stream.flush()
