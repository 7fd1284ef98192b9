"""Checkpoint schemas of the TNN models, ``TNNNetwork`` (format version 2) and ``TNNColumn``
(version 1).

Parameters: the network's ``structure`` (a :class:`~sparsedream_fast.tnn.Structure`) is saved
as the builder calls that make it (its layers and connections as JSON, an init array under
``params.structure.connections.<m>.init``) and rebuilt through the same builder methods, so
that a loaded structure has passed every check a hand-built one passes.

Fitted state: ``state`` holds ``n_features_in`` (the data's lines per wave, which sizes an
input of open size), ``n_waves_learned`` (the STDP counter, >= 0), ``seed`` (the Philox key,
in [0, 2**63)), ``rng`` (the generator of the initial weights and presentation orders);
``weights.<i>`` is the weight matrix of the i-th column in the order the columns were added,
shape (n_neurons, D) (D: the column's synapses, from the structure), the ``dtype`` parameter's
integer dtype, entries in [0, w_max]; ``feature_names_in_`` (text, one per input line) where
the model was fitted on a DataFrame. A column saves the state of its one-column network.

Version 1 of ``TNNNetwork`` (written by the TNN package's own saver before this module) is read by
:func:`_upgrade_v1` and checked the same way; it continued with ``fit``, which now starts
afresh unless ``warm_start=True``.

This module imports no model module at import time (the models import the checkpoint
package); the structure's builder is imported when a file is read.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import Schema, generator, generator_state, integer, register
from ._params import register_type

_I63 = 2**63 - 1
_SIZE_MAX = 2**31 - 1
#: lines (spike-time slots of one wave: inputs, columns, delay stages) a saved network may
#: have: a bound on what a crafted file can make the loader allocate (a column reading all
#: of them would hold 64 MB of int32 weights per neuron, far beyond any network trained here)
MAX_LINES = 2**24
_LAYER_KEYS = {"input": {"kind", "name", "n"},
               "column": {"kind", "name", "n", "threshold", "k", "w_max", "stdp"},
               "delay": {"kind", "name", "source", "waves"}}
_CONN_KEYS = {"source", "target", "init", "selector", "learn", "density"}


# ----------------------------------------------------------------- the structure parameter
def structure_fields(s) -> dict:
    """The builder calls of a Structure, as plain values (its public layers and connections)."""
    layers = []
    for l in s.layers:
        if l.kind == "input":
            layers.append({"kind": "input", "name": l.name, "n": l.n})
        elif l.kind == "column":
            sp = l.spec
            layers.append({"kind": "column", "name": l.name, "n": sp.n_neurons, "threshold": sp.threshold,
                           "k": sp.k, "w_max": sp.w_max, "stdp": sp.stdp.to_dict()})
        else:
            layers.append({"kind": "delay", "name": l.name, "source": l.source, "waves": l.waves})
    conns = []
    for c in s.connections:
        sel = c.selector
        if isinstance(sel, slice):
            sel = {"slice": [sel.start, sel.stop, sel.step]}
        conns.append({"source": c.source, "target": c.target, "init": c.init, "selector": sel,
                      "learn": c.learn, "density": c.density})
    return {"layers": layers, "connections": conns}


def _slice(d):
    parts = d.get("slice") if isinstance(d, dict) and set(d) == {"slice"} else None
    if not (isinstance(parts, (list, tuple)) and len(parts) == 3 and all(
            p is None or (isinstance(p, int) and not isinstance(p, bool) and abs(p) <= _SIZE_MAX) for p in parts)):
        raise ValueError(f"a saved slice must be {{'slice': [start, stop, step]}}, got {d!r:.60}")
    if parts[2] == 0:
        raise ValueError("a saved slice has step 0")
    return slice(*parts)


def build_structure(layers, connections):
    """A Structure from :func:`structure_fields`' values, made by the builder methods (which
    check every setting); ValueError or TypeError for anything else."""
    from ..tnn.structure import Structure
    if not isinstance(layers, list) or not isinstance(connections, list):
        raise TypeError("a saved structure needs lists of layers and connections")
    s = Structure()
    try:
        for d in layers:
            keys = _LAYER_KEYS.get(d.get("kind")) if isinstance(d, dict) else None
            if keys is None or set(d) != keys:
                raise ValueError(f"not a saved layer: {d!r:.80}")
            if d["kind"] == "input":
                s = s.add_input(d["name"], d["n"])
            elif d["kind"] == "column":
                if not isinstance(d["stdp"], dict):
                    raise TypeError(f"column {d['name']!r:.40}: stdp must be a dict of probabilities")
                s = s.add_column(d["name"], d["n"], d["threshold"], d["k"], d["w_max"], d["stdp"])
            else:
                s = s.add_delay(d["name"], d["source"], d["waves"])
            if _lines(s) > MAX_LINES:   # before any connection allocates its lines
                raise ValueError(f"a saved structure may have at most {MAX_LINES} lines")
        for d in connections:
            if not isinstance(d, dict) or set(d) != _CONN_KEYS:
                raise ValueError(f"not a saved connection: {d!r:.80}")
            init, sel = d["init"], d["selector"]
            if isinstance(sel, dict):
                sel = _slice(sel)
            elif sel is not None and not isinstance(sel, tuple):
                raise TypeError(f"connection lines must be None, a slice or a tuple, got {sel!r:.40}")
            if isinstance(init, tuple) and not (len(init) == 2 and all(
                    isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in init)):
                raise ValueError(f"init must be an integer pair or an array, got {init!r:.40}")
            if not isinstance(init, (tuple, np.ndarray)):
                raise TypeError(f"init must be an integer pair or an array, got {init!r:.40}")
            if isinstance(init, np.ndarray) and init.dtype.kind not in "iuf":
                raise TypeError(f"an init array must hold numbers, got dtype {init.dtype}")
            if not isinstance(d["learn"], bool):
                raise TypeError(f"learn must be True or False, got {d['learn']!r:.20}")
            s = s.connect(d["source"], d["target"], init=init, lines=sel, learn=d["learn"], density=d["density"])
    except KeyError as exc:   # a layer named that does not exist
        raise ValueError(str(exc)) from None
    return s


register_type("tnn.Structure", "sparsedream_fast.tnn.structure:Structure", fields=structure_fields,
              factory="sparsedream_fast.checkpoint._tnn:build_structure")


# ----------------------------------------------------------------------- network state
def dump_network(net) -> tuple:
    """``(state, arrays)`` of a TNNNetwork (``fitted`` False before it has weights)."""
    if not net.__sklearn_is_fitted__():
        return {"fitted": False}, {}
    T = int(net.T)
    if T != net._prog.T:
        raise ValueError(f"T was changed from {net._prog.T} to {T} after the network was built; its weights "
                         f"belong to T={net._prog.T}: set T back, or start from clone()")
    try:
        same = net.structure_ == net._structure().sized(net.n_features_in_)
    except (ValueError, TypeError):
        same = False
    if not same:
        raise ValueError("the structure parameter was changed after the network was fitted (its weights "
                         "belong to structure_): set it back, or start from clone()")
    columns = net.structure_.columns()
    arrays = {f"weights.{i}": np.ascontiguousarray(net.weights_[l.name]) for i, l in enumerate(columns)}
    names = net.__dict__.get("feature_names_in_")
    if names is not None:
        arrays["feature_names_in_"] = np.asarray(names, dtype=str)
    state = {"fitted": True, "n_features_in": int(net.n_features_in_), "n_waves_learned": int(net.n_waves_learned_),
             "seed": int(net.seed_), "rng": generator_state(net._rng), "backend_": getattr(net, "backend_", None)}
    return state, arrays


def _lines(structure) -> int:
    """The lines of a structure's program (inputs, columns, every delay stage); open inputs 0."""
    return sum((l.n or 0) * (l.waves if l.kind == "delay" else 1) for l in structure.layers)


def restore_network(net, state, contents, names_key="feature_names_in_"):
    """Check the fitted state of ``contents`` against the freshly built ``net`` (structure,
    dtype, T from its parameters) and install it. Returns the saved feature names or None.

    The weights are read (their shapes checked against the structure sized by the saved
    width) before anything is allocated for the network, so that sizes in a crafted file
    cannot make it allocate more than the file holds."""
    from ..tnn.config import check_weight_dtype
    width = integer(state, "n_features_in", "state", contents, 1, MAX_LINES)
    try:
        backend, _ = net._backend()
        dtype = check_weight_dtype(net.dtype)
        structure = net._structure()
        if _lines(structure) + width > MAX_LINES:
            raise ValueError(f"the network would have more than {MAX_LINES} lines")
        structure = structure.sized(width)
        if _lines(structure) > MAX_LINES:
            raise ValueError(f"the network would have more than {MAX_LINES} lines")
        if structure.n_inputs != width:
            raise ValueError(f"the structure takes {structure.n_inputs} input lines, the saved state {width}")
    except (ValueError, TypeError, KeyError) as exc:
        raise contents.error("params", f"{type(exc).__name__}: {exc}") from None
    old = state.get("v1") is True
    weights = {}
    for i, l in enumerate(structure.columns()):
        key = f"W_{l.name}" if old else f"weights.{i}"
        D = sum(len(c.lines) for c in structure.incoming(l.name))
        weights[l.name] = contents.array(key, dtype=dtype, shape=(l.n, D), low=0, high=l.spec.w_max)
    n_waves = integer(state, "n_waves_learned", "state", contents, 0, _I63)
    seed = integer(state, "seed", "state", contents, 0, _I63)
    rng = generator(state.get("rng"), "state.rng", contents)
    names = None
    if names_key in contents:
        names = contents.array(names_key, kind="U", shape=(width,)).astype(object)
    try:
        net._build(width)
    except (ValueError, TypeError, KeyError) as exc:
        raise contents.error("params", f"{type(exc).__name__}: {exc}") from None
    net.weights_, net._rng, net.seed_, net.n_waves_learned_, net.backend_ = weights, rng, seed, n_waves, backend
    net._checked_weights()
    return names


def restore_net(net, state, contents) -> None:
    """Check and install the fitted state of a TNNNetwork (and that ``readout`` names its layers)."""
    names = restore_network(net, state, contents)
    readout = net.readout
    known = [l.name for l in net.structure_.layers]
    if readout is not None and not (isinstance(readout, str) and readout in known) and not (
            isinstance(readout, list) and readout and all(isinstance(r, str) and r in known for r in readout)):
        raise contents.error("params", f"readout={readout!r:.60} must be None or name layers of {known}")
    if names is not None:
        net.feature_names_in_ = names


# ------------------------------------------------------------------------ column state
def dump_column(col) -> tuple:
    """``(state, arrays)`` of a TNNColumn: its network's, and its own feature names."""
    if not col.__sklearn_is_fitted__():
        return {"fitted": False}, {}
    state, arrays = dump_network(col._net)
    names = col.__dict__.get("feature_names_in_")
    if names is not None:
        arrays["feature_names_in_"] = np.asarray(names, dtype=str)
    return state, arrays


def restore_column(col, state, contents) -> None:
    """Check and install the fitted state of a TNNColumn (its network built from its parameters)."""
    try:
        net = col._make_net()
    except (ValueError, TypeError) as exc:
        raise contents.error("params", f"{type(exc).__name__}: {exc}") from None
    names = restore_network(net, state, contents)
    col._net, col.n_features_in_, col.backend_ = net, net.n_features_in_, net.backend_
    if names is not None:
        col.feature_names_in_ = names


# ------------------------------------------------------------------------ version 1
def _upgrade_v1(contents):
    """``(params, state)`` of a TNNNetwork/1 file (keys ``network``, ``built``, ``W_<column>``,
    ``init_<m>``, ``n_waves_learned``, ``seed``, ``rng``)."""
    doc = contents.json("network")
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), t) for k, t in
                                            (("params", dict), ("layers", list), ("connections", list))):
        raise contents.error("network", "must be a JSON object with params, layers and connections")
    layers = []
    for d in doc["layers"]:
        if isinstance(d, dict) and d.get("kind") == "delay":
            d = {k: v for k, v in d.items() if k != "n"}   # version 1 wrote the delay's size too
        layers.append(d)
    conns = []
    for m, c in enumerate(doc["connections"]):
        if not isinstance(c, dict) or set(c) != {"source", "target", "lines", "learn", "density", "init"}:
            raise contents.error("network", f"connection {m}: not a saved connection ({c!r:.60})")
        init = c["init"]
        init = contents.array(f"init_{m}", kind="iuf") if init == "array" else \
            tuple(init) if isinstance(init, list) else init
        lines = tuple(c["lines"]) if isinstance(c["lines"], list) else c["lines"]
        conns.append({"source": c["source"], "target": c["target"], "init": init, "selector": lines,
                      "learn": c["learn"], "density": c["density"]})
    try:
        structure = build_structure(layers, conns)
    except (ValueError, TypeError) as exc:
        raise contents.error("network", str(exc)) from None
    params = dict(doc["params"], structure=structure)
    built = contents.array("built", kind="b", shape=())
    if not bool(built):
        return params, {"fitted": False}
    state = {"fitted": True, "v1": True, "n_features_in": structure.n_inputs,
             "n_waves_learned": int(contents.array("n_waves_learned", kind="iu", shape=())),
             "seed": int(contents.array("seed", kind="iu", shape=())), "rng": contents.json("rng")}
    return params, state


NETWORK = register(Schema("TNNNetwork", 2, "sparsedream_fast.tnn.network:TNNNetwork", dump_network, restore_net,
                          upgrades={1: _upgrade_v1}))
COLUMN = register(Schema("TNNColumn", 1, "sparsedream_fast.tnn.column:TNNColumn", dump_column, restore_column))
