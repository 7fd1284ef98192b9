"""Checkpoints of ``TNNNetwork``: one ``.npz`` file, no pickles.

Keys (numpy arrays; strings as 0-d unicode arrays):

``format``        "sparsedream_fast.TNNNetwork/1"
``network``       JSON: constructor parameters, layers (name, kind, size, column settings,
                  delay source and length) and connections (source, target, lines, learn,
                  density, init as a (low, high) pair or "array") in the order they were made
``init_<m>``      the init array of connection m, where one was given
``built``         bool scalar: whether the weights below exist
``W_<column>``    (N, D) weights of each column (built networks)
``n_waves_learned``, ``seed``  int scalars; ``rng``  JSON of the generator's state
A loaded network continues exactly as the saved one would have (same STDP draws and
presentation orders).
"""
from __future__ import annotations

import json
import os

import numpy as np

from .config import STDP
from .network import TNNNetwork

FORMAT = "sparsedream_fast.TNNNetwork/1"

__all__ = ["save", "load", "FORMAT"]


def save(net: TNNNetwork, path) -> None:
    """Write ``net`` (built or not) to ``path`` (.npz)."""
    if net._built and int(net.T) != net._prog.T:
        raise ValueError(f"T was changed from {net._prog.T} to {net.T} after the network was built; "
                         "its weights belong to T={net._prog.T}: set T back, or start from clone()")
    layers = []
    for l in net._layers.values():
        d = {"name": l.name, "kind": l.kind, "n": l.n}
        if l.kind == "column":
            s = l.spec
            d.update(threshold=s.threshold, k=s.k, w_max=s.w_max, stdp=s.stdp.to_dict())
        elif l.kind == "delay":
            d.update(source=l.source, waves=l.waves)
        layers.append(d)
    arrays, conns = {}, []
    for m, c in enumerate(net._connections):
        init = c.init
        if isinstance(init, (tuple, list)) and len(init) == 2 and all(np.isscalar(v) for v in init):
            init_json = [int(init[0]), int(init[1])]
        else:
            init_json = "array"
            arrays[f"init_{m}"] = np.asarray(init)
        conns.append({"source": c.source, "target": c.target, "lines": [int(i) for i in c.lines],
                      "learn": c.learn, "density": c.density, "init": init_json})
    params = {k: v for k, v in net.get_params(deep=False).items() if k != "structure"}  # stored as layers
    doc = {"params": params, "layers": layers, "connections": conns}
    arrays.update(format=np.array(FORMAT), network=np.array(json.dumps(doc)), built=np.array(net._built))
    if net._built:
        for name, W in net.weights_.items():
            arrays[f"W_{name}"] = W
        arrays.update(n_waves_learned=np.array(net.n_waves_learned_, dtype=np.int64),
                      seed=np.array(net.seed_, dtype=np.int64),
                      rng=np.array(json.dumps(net._rng.bit_generator.state)))
    with open(os.fspath(path), "wb") as fh:
        np.savez(fh, **arrays)


def load(path) -> TNNNetwork:
    """Read a network written by :func:`save` (or ``TNNNetwork.save``)."""
    with np.load(os.fspath(path), allow_pickle=False) as f:
        if "format" not in f or str(f["format"]) != FORMAT:
            raise ValueError(f"{path} is not a TNNNetwork checkpoint ({FORMAT})")
        doc = json.loads(str(f["network"]))
        net = TNNNetwork(**doc["params"])
        for d in doc["layers"]:
            if d["kind"] == "input":
                net.add_input(d["name"], d["n"])
            elif d["kind"] == "column":
                net.add_column(d["name"], d["n"], d["threshold"], d["k"], d["w_max"], STDP(**d["stdp"]))
            else:
                net.add_delay(d["name"], d["source"], d["waves"])
        for m, c in enumerate(doc["connections"]):
            init = tuple(c["init"]) if c["init"] != "array" else f[f"init_{m}"]
            net.connect(c["source"], c["target"], init=init, lines=np.array(c["lines"], dtype=np.int64),
                        learn=c["learn"], density=c["density"])
        if bool(f["built"]):
            prog, starts = net._compile(net._structure())
            rng = np.random.default_rng()
            rng.bit_generator.state = json.loads(str(f["rng"]))
            net.weights_ = {n: np.ascontiguousarray(f[f"W_{n}"]) for n, l in net._layers.items()
                            if l.kind == "column"}
            net._prog, net._starts, net._rng = prog, starts, rng
            net.structure_, net.n_features_in_ = net._structure(), prog.n_in
            net.seed_ = int(f["seed"])
            net.n_waves_learned_ = int(f["n_waves_learned"])
            net._built = True
            net._checked_weights()
    return net
