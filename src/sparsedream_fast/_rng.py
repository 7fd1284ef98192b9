"""The one place where sample orders are drawn, so every backend sees the same order."""
from __future__ import annotations

import numpy as np

__all__ = ["epoch_order", "batch_order", "batches_left", "one_batch"]


#: sample indices one fit orders at once (int64: 8 GB)
MAX_ORDER = 2**30


def epoch_order(rng: np.random.Generator, n_samples: int, epochs: int, shuffle: bool,
                steps_per_epoch: int | None = None) -> np.ndarray:
    """Sample indices of every epoch.

    With ``shuffle`` each epoch draws ``rng.permutation(n_samples)`` (as the notebooks'
    ``data[np.random.permutation(n)]``) and keeps its first ``steps_per_epoch``; without it
    every epoch is ``arange(steps_per_epoch)`` and nothing is drawn.

    Returns
    -------
    ndarray of shape (epochs, steps_per_epoch), int64, C-contiguous
    """
    steps = n_samples if steps_per_epoch is None else steps_per_epoch
    if epochs * steps > MAX_ORDER:
        # the whole order is made before training starts; a huge epochs would exhaust memory
        raise ValueError(f"epochs={epochs} x {steps} samples per epoch is more than the {MAX_ORDER:,} sample "
                         "indices (8 GB) ordered at once: train with fewer epochs per call")
    if shuffle:
        rows = [rng.permutation(n_samples)[:steps] for _ in range(epochs)]
        return np.ascontiguousarray(np.stack(rows), dtype=np.int64)
    return np.ascontiguousarray(np.tile(np.arange(steps, dtype=np.int64), (epochs, 1)))


def batch_order(rng: np.random.Generator, n_samples: int, epochs: int, batch_size: int,
                shuffle: bool) -> np.ndarray:
    """Minibatches of every epoch, as the batch notebooks (seeds 002, 003) form them.

    Each epoch permutes the samples (or keeps their order), cuts ``n // batch_size``
    consecutive batches and drops the final partial one.

    Returns
    -------
    ndarray of shape (epochs, n // batch_size, batch_size), int64, C-contiguous
    """
    nb = n_samples // batch_size
    order = epoch_order(rng, n_samples, epochs, shuffle)[:, : nb * batch_size]
    return np.ascontiguousarray(order.reshape(epochs, nb, batch_size))


def batches_left(batches: np.ndarray, done: int) -> tuple[int, np.ndarray]:
    """What a fit of ``batches`` (epochs, n_batches, B) has left after ``done`` batches, for
    the next backend call: ``(epoch, part)`` with part the rest of the current epoch, shape
    (1, n_batches - i, B), when ``done`` stops inside one, else every epoch left, whole (the
    GPU fits gather one epoch's samples at a time and replay whole epochs as a graph)."""
    e, i = divmod(int(done), batches.shape[1])
    return e, (batches[e:e + 1, i:] if i else batches[e:])


def one_batch(n_samples: int) -> np.ndarray:
    """The batch order of a single batch of every sample in order, int64 of shape
    (1, 1, n_samples): how the backends run one minibatch through their ``fit``."""
    return np.arange(n_samples, dtype=np.int64).reshape(1, 1, -1)
