"""The research notebooks' training loops, transcribed as independent test oracles.

Each function below is one loop of seed 000 ("Normalizing SparseDream") or seed 001
("Topo Time Series MWTA"), copied cell by cell with ``cupy`` replaced by ``numpy``. The
only changes to the notebook code are the ones that make a run deterministic and
comparable:

* every array the notebook drew at random is an argument (initial weights ``w0``
  (N, D), an initial learned lateral ``lex0`` (N, N), the data (n, D));
* the per-epoch ``np.random.permutation(tr_len)`` is an argument ``perms`` (a list of
  index arrays, one per epoch), or ``None`` for the data in order (then ``epochs`` says
  how many epochs); ``steps`` is the notebook's ``T_s``;
* the plotting (``draw_weights``) and ``tqdm`` are gone.

Everything else is the notebook's own code: column vectors of shape (N, 1), the dense
``N x N`` lateral product, the dense ``w += w * o * (e / mod_r).T * xi`` update over all
rows, and the ``argsort``-based winner selection (``np.argsort(c, axis=0)[-n_w:]``), which
leaves ties unordered; with random float64 data there are no ties.

This module is deliberately independent of ``sparsedream_fast``: it imports numpy only.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "notebook_lateral", "notebook_lateral_row_normalized",
    "seed001_in12", "seed001_in15", "seed001_in23", "seed001_in31",
    "seed000_in6_weighted_average",
    "seed000_in19_learned_lateral", "seed000_in37_learned_lateral_clip",
    "seed000_in6b_learned_lateral_max0",
    "seed000_in58_mean_lateral",
    "notebook_tapestry", "notebook_tapestry_walk",
]


# --------------------------------------------------------------------------- helpers
def _epochs(data, perms, epochs):
    """The notebook's ``inputs`` of each epoch.

    ``inputs = data[np.random.permutation(tr_len)]`` with the permutation given, or the
    data in order (seed 001 In [31]: ``inputs = gp_data``).
    """
    if perms is None:
        if epochs is None:
            raise ValueError("epochs is needed when perms is None (data in order)")
        for _ in range(epochs):
            yield data
    else:
        for perm in perms:
            yield data[np.asarray(perm)]


# ------------------------------------------------------------------ lateral builders
def notebook_lateral(Ky, Kx, ex=2, value=0.1):
    """The notebooks' lateral excitation matrix, off-by-one included (dense (N, N)).

    Seed 001 In [12]-[31] (``value=0.1``) and seed 000 In [19] / In [6] (``value=1``: the
    mask ``lex_mask``). The slice ``min(Ky - 1, y + ex + 1)`` leaves the last grid row and
    column out of every neighbourhood.
    """
    lat_ex = []

    for y in range(Ky):
        for x in range(Kx):
            curr_ex = np.zeros((Ky, Kx))
            curr_ex[max(0, y - ex): min(Ky - 1, y + ex + 1), max(0, x - ex): min(Kx - 1, x + ex + 1)] = value
            lat_ex.append(curr_ex.reshape(-1))

    lat_ex = np.array(lat_ex)
    np.fill_diagonal(lat_ex, 0)
    return lat_ex


def notebook_lateral_row_normalized(Ky, Kx, ex=1):
    """Seed 000 In [58]: the (off-by-one) mask divided by its row sums."""
    lat_ex_mask = []

    for y in range(Ky):
        for x in range(Kx):
            curr_ex = np.zeros((Ky, Kx))
            curr_ex[max(0, y - ex): min(Ky - 1, y + ex + 1), max(0, x - ex): min(Kx - 1, x + ex + 1)] = 1
            lat_ex_mask.append(curr_ex.reshape(-1))

    # lex -> lateral excitation
    lex = np.array(lat_ex_mask)
    np.fill_diagonal(lex, 0)
    lex = lex / np.sum(lex, axis=1).reshape(-1, 1)
    return lex


# ------------------------------------------------------------------------- seed 001
def seed001_in12(w0, lat_ex, data, perms, steps, *, n_w=5, xi=0.01, prec=1e-10, epochs=None):
    """Seed 001 In [12]: ``p += lat_ex @ p``, ``o = mask * p``, error not clipped.

    Library equivalent: ``competition="lateral", output="competition", error_clip=None``.
    """
    w = np.array(w0, dtype=np.float64, copy=True)
    N = w.shape[0]
    lat_ex = np.asarray(lat_ex, dtype=np.float64)

    for inputs in _epochs(data, perms, epochs):
        for i in range(steps):
            v = inputs[i].reshape(-1, 1)
            p = w @ v
            p += lat_ex @ p
            winners = np.argsort(p, axis=0)[-n_w:]
            mask = np.zeros((N, 1))
            mask[winners] = 1
            o = mask * p
            r = w.T @ o
            mod_r = np.maximum(r, prec)
            # e = cp.clip(v - r, -1, 1)   (commented out in the notebook)
            e = v - r

            w += w * o * (e / mod_r).T * xi

    return w


def seed001_in15(w0, lat_ex, data, perms, steps, *, n_w=5, xi=0.03, prec=1e-10, epochs=None):
    """Seed 001 In [15] / In [16]: as In [12] with the error clipped to [-1, 1].

    Library equivalent: ``competition="lateral", output="competition", error_clip=1.0``.
    """
    w = np.array(w0, dtype=np.float64, copy=True)
    N = w.shape[0]
    lat_ex = np.asarray(lat_ex, dtype=np.float64)

    for inputs in _epochs(data, perms, epochs):
        for i in range(steps):
            v = inputs[i].reshape(-1, 1)
            p = w @ v
            p += lat_ex @ p
            winners = np.argsort(p, axis=0)[-n_w:]
            mask = np.zeros((N, 1))
            mask[winners] = 1
            o = mask * p
            r = w.T @ o
            mod_r = np.maximum(r, prec)
            e = np.clip(v - r, -1, 1)

            w += w * o * (e / mod_r).T * xi

    return w


def seed001_in23(w0, lat_ex, data, perms, steps, *, n_w=5, xi=0.03, prec=1e-10, epochs=None):
    """Seed 001 In [23] / In [29]: compete on ``c = p + lat_ex @ p``, output ``o = mask * p``.

    Library equivalent: ``competition="lateral", output="drive", error_clip=1.0``.
    """
    w = np.array(w0, dtype=np.float64, copy=True)
    N = w.shape[0]
    lat_ex = np.asarray(lat_ex, dtype=np.float64)

    for inputs in _epochs(data, perms, epochs):
        for i in range(steps):
            v = inputs[i].reshape(-1, 1)
            p = w @ v
            c = p + (lat_ex @ p)
            winners = np.argsort(c, axis=0)[-n_w:]
            mask = np.zeros((N, 1))
            mask[winners] = 1
            o = mask * p
            r = w.T @ o
            mod_r = np.maximum(r, prec)
            e = np.clip(v - r, -1, 1)

            w += w * o * (e / mod_r).T * xi

    return w


def seed001_in31(w0, lat_ex, data, perms, steps, *, n_w=5, xi=0.03, prec=1e-10, epochs=None,
                 alpha=0.5):
    """Seed 001 In [31]: In [23] with the trace ``o += ((mask * p) - o) * 0.5``.

    The notebook feeds the data in order (``inputs = gp_data``: pass ``perms=None`` and
    ``epochs``) and zeroes ``o`` at the start of every epoch. Every non-zero of ``o`` takes
    part in the reconstruction and the update (nothing is dropped).

    Library equivalent: ``competition="lateral", output="drive", error_clip=1.0,
    trace=0.5`` fitted with ``shuffle=False``.
    """
    w = np.array(w0, dtype=np.float64, copy=True)
    N = w.shape[0]
    lat_ex = np.asarray(lat_ex, dtype=np.float64)

    for inputs in _epochs(data, perms, epochs):
        o = np.zeros((N, 1))
        for i in range(steps):
            v = inputs[i].reshape(-1, 1)
            p = w @ v
            c = p + (lat_ex @ p)
            winners = np.argsort(c, axis=0)[-n_w:]
            mask = np.zeros((N, 1))
            mask[winners] = 1
            o += ((mask * p) - o) * alpha
            r = w.T @ o
            mod_r = np.maximum(r, prec)
            e = np.clip(v - r, -1, 1)

            w += w * o * (e / mod_r).T * xi

    return w


# ------------------------------------------------------------------------- seed 000
def seed000_in6_weighted_average(w0, data, perms, steps, *, n_w=10, xi=0.005, prec=1e-10,
                                 epochs=None):
    """Seed 000 In [6] (first cell, also In [9], In [12]): weighted-average competition.

    ``p = w @ v**2 / max(w @ v, prec)`` is both the competition value and the output.
    Library equivalent: ``competition="weighted_average", output="competition",
    lateral=None, error_clip=None``.
    """
    w = np.array(w0, dtype=np.float64, copy=True)
    N = w.shape[0]

    for inputs in _epochs(data, perms, epochs):
        for i in range(steps):
            v = inputs[i].reshape(-1, 1)
            p = w @ np.square(v) / np.maximum(w @ v, prec)
            winners = np.argsort(p, axis=0)[-n_w:]
            mask = np.zeros((N, 1))
            mask[winners] = 1
            o = mask * p
            r = w.T @ o
            mod_r = np.maximum(r, prec)
            e = v - r

            w += w * o * (e / mod_r).T * xi

    return w


def seed000_in19_learned_lateral(w0, lex0, data, perms, steps, *, n_w=3, xi=0.01, prec=1e-10,
                                 epochs=None):
    """Seed 000 In [19]: learned lateral reconstruction, no bounds.

    ``p1 = w_v / rowsum(w)``, ``p2 = w_v + lex @ p1``, ``o = mask * p2``; the weights'
    update, then ``l_r = lex.T @ o`` and ``lex += lex * o * ((o - l_r) / max(l_r, prec)).T * xi``.
    Library equivalent: ``competition="normalized_lateral", output="competition",
    learn_lateral=True, lateral=lex0`` (lateral_lr = lr).
    Returns ``(w, lex)``.
    """
    w = np.array(w0, dtype=np.float64, copy=True)
    lex = np.array(lex0, dtype=np.float64, copy=True)
    N = w.shape[0]

    for inputs in _epochs(data, perms, epochs):
        for i in range(steps):
            v = inputs[i].reshape(-1, 1)
            w_v = w @ v

            p1 = w_v / np.sum(w, axis=1).reshape(-1, 1)
            p2 = w_v + (lex @ p1)

            winners = np.argsort(p2, axis=0)[-n_w:]
            mask = np.zeros((N, 1))
            mask[winners] = 1
            o = mask * p2
            r = w.T @ o
            mod_r = np.maximum(r, prec)
            e = v - r

            w += w * o * (e / mod_r).T * xi

            l_r = lex.T @ o
            mlr = np.maximum(l_r, prec)
            elr = o - l_r

            lex += lex * o * (elr / mlr).T * xi

    return w, lex


def seed000_in37_learned_lateral_clip(w0, lex0, data, perms, steps, *, n_w=5, xi=0.01,
                                      prec=1e-10, max_syn=0.5, epochs=None):
    """Seed 000 In [37] / In [44]: In [19] with ``clip(., 0, max_syn)`` at ``i % 100 == 0``.

    (In the notebook ``lex0`` is ``U(0, max_syn)`` over all pairs with a zero diagonal.)
    Library equivalent: In [19]'s options plus ``w_max=max_syn, clip_every=100``.
    Returns ``(w, lex)``.
    """
    w = np.array(w0, dtype=np.float64, copy=True)
    lex = np.array(lex0, dtype=np.float64, copy=True)
    N = w.shape[0]

    for inputs in _epochs(data, perms, epochs):
        for i in range(steps):
            v = inputs[i].reshape(-1, 1)
            w_v = w @ v

            p1 = w_v / np.sum(w, axis=1).reshape(-1, 1)
            p2 = w_v + (lex @ p1)

            winners = np.argsort(p2, axis=0)[-n_w:]
            mask = np.zeros((N, 1))
            mask[winners] = 1
            o = mask * p2
            r = w.T @ o
            mod_r = np.maximum(r, prec)
            e = v - r

            w += w * o * (e / mod_r).T * xi

            l_r = lex.T @ o
            mlr = np.maximum(l_r, prec)
            elr = o - l_r

            lex += lex * o * (elr / mlr).T * xi

            if i % 100 == 0:
                w = np.clip(w, 0, max_syn)
                lex = np.clip(lex, 0, max_syn)

    return w, lex


def seed000_in6b_learned_lateral_max0(w0, lex0, data, perms, steps, *, n_w=5, xi=0.01,
                                      prec=1e-10, epochs=None):
    """Seed 000, the second In [6] (400 neurons): In [19] with ``max(0, .)`` every 1000 steps.

    Library equivalent: In [19]'s options plus ``w_max=np.inf, clip_every=1000``.
    Returns ``(w, lex)``.
    """
    w = np.array(w0, dtype=np.float64, copy=True)
    lex = np.array(lex0, dtype=np.float64, copy=True)
    N = w.shape[0]

    for inputs in _epochs(data, perms, epochs):
        for i in range(steps):
            v = inputs[i].reshape(-1, 1)
            w_v = w @ v

            p1 = w_v / np.sum(w, axis=1).reshape(-1, 1)
            p2 = w_v + (lex @ p1)

            winners = np.argsort(p2, axis=0)[-n_w:]
            mask = np.zeros((N, 1))
            mask[winners] = 1
            o = mask * p2
            r = w.T @ o
            mod_r = np.maximum(r, prec)
            e = v - r

            w += w * o * (e / mod_r).T * xi

            l_r = lex.T @ o
            mlr = np.maximum(l_r, prec)
            elr = o - l_r

            lex += lex * o * (elr / mlr).T * xi

            if i % 1000 == 0:
                w = np.maximum(0, w)
                lex = np.maximum(0, lex)

    return w, lex


def seed000_in58_mean_lateral(w0, lex, data, perms, steps, *, n_w=8, xi=0.005, prec=1e-10,
                              max_syn=0.5, epochs=None):
    """Seed 000 In [58]: fixed row-normalized lateral, ``p2 = (3 p1 + lex @ p1) / 4``, ``o = mask * w_v``.

    ``w`` and (a no-op for values <= max_syn) ``lex`` are clipped at ``i % 100 == 0``.
    Library equivalent: ``competition="mean_lateral", output="drive", error_clip=None,
    w_max=max_syn, clip_every=100``. Returns ``w``.
    """
    w = np.array(w0, dtype=np.float64, copy=True)
    lex = np.array(lex, dtype=np.float64, copy=True)
    N = w.shape[0]

    for inputs in _epochs(data, perms, epochs):
        for i in range(steps):
            v = inputs[i].reshape(-1, 1)
            w_v = w @ v

            p1 = w_v / np.sum(w, axis=1).reshape(-1, 1)
            p2 = (3 * p1 + (lex @ p1)) / 4

            winners = np.argsort(p2, axis=0)[-n_w:]
            mask = np.zeros((N, 1))
            mask[winners] = 1
            o = mask * w_v
            r = w.T @ o
            mod_r = np.maximum(r, prec)
            e = v - r

            w += w * o * (e / mod_r).T * xi

            if i % 100 == 0:
                w = np.clip(w, 0, max_syn)
                lex = np.clip(lex, 0, max_syn)

    return w


# ------------------------------------------------------------------- tapestry data
def notebook_tapestry(images, t_sl=30, m_sl=28):
    """Seed 001 In [2]: tile ``t_sl**2`` images (column by column) into a wrapping tapestry.

    ``images`` has shape (>= t_sl**2, m_sl, m_sl), values in [0, 1].
    """
    tapestry = np.zeros((t_sl * m_sl, t_sl * m_sl))

    x_i = 0

    for x in range(t_sl):
        for y in range(t_sl):

            tapestry[y * m_sl : (y + 1) * m_sl, x * m_sl : (x + 1) * m_sl] = images[x_i]
            x_i += 1

    tapestry[(t_sl - 1) * m_sl:, :] = tapestry[: m_sl, :]
    tapestry[:, (t_sl - 1) * m_sl:] = tapestry[:, : m_sl]
    return tapestry


def notebook_tapestry_walk(tapestry, rng, t_sl=30, m_sl=28, sl=20, img_count=10_000,
                           x_o=None, y_o=None, v_max=3, del_t=1):
    """Seed 001 In [4] + In [6]: a random walk with momentum over the tapestry.

    ``rng`` is a ``np.random.RandomState`` standing in for the notebook's global
    ``np.random``. ``x_o, y_o`` default to the centre (the notebook's 420 for 30 x 28).
    Returns ``ts_data`` of shape (img_count, sl**2).
    """
    if x_o is None:
        x_o = t_sl * m_sl // 2
    if y_o is None:
        y_o = t_sl * m_sl // 2

    x = x_o
    y = y_o

    v_x = 0
    v_y = 0

    a_x = rng.uniform(-1, 1)
    a_y = rng.uniform(-1, 1)

    imgs = []

    for i in range(img_count):
        if i % 20 == 0:
            a_x = rng.uniform(-1, 1)
            a_y = rng.uniform(-1, 1)

        x += v_x * del_t
        y += v_y * del_t
        v_x = np.clip(v_x + (a_x * del_t), -v_max, v_max)
        v_y = np.clip(v_y + (a_y * del_t), -v_max, v_max)

        x_f = int(x) % ((t_sl - 1) * m_sl)
        y_f = int(y) % ((t_sl - 1) * m_sl)

        imgs.append(tapestry[y_f: y_f + sl, x_f : x_f + sl])

    img_array = np.array(imgs)
    ts_data = img_array.reshape(-1, sl ** 2)
    return ts_data
