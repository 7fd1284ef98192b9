"""The structure of a TNN network (its layers and connections) as one immutable value.

A :class:`Structure` is what ``TNNNetwork(structure=...)`` takes, so that ``clone``,
``get_params`` and a grid search see the network's shape like any other parameter. Each
builder method returns a new structure and leaves the old one as it was::

    s = Structure().add_input("px", 28).add_column("rec", 100, threshold=32, k=10)
    s = s.add_delay("buf", "rec").connect("px", "rec", init=(0, 2)).connect("buf", "rec", init=(0, 8))
    net = TNNNetwork(structure=s)

``TNNNetwork.add_input`` and friends do the same on the network's ``structure`` parameter.
An input layer may leave its size open (``n=None``): it is then taken from the data at
``fit`` (:meth:`Structure.sized`).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import ArrayLike

from .._validation import check_int
from .config import STDP, ColumnSpec

__all__ = ["Structure", "Layer", "Connection"]

_KINDS = ("input", "column", "delay")


@dataclass(frozen=True)
class Layer:
    """One layer of a network.

    Attributes
    ----------
    name : str
    kind : {"input", "column", "delay"}
    n : int or None
        Its lines (a column: its neurons). None: an input (or a delay of one) sized by the data.
    spec : ColumnSpec or None
        A column's settings.
    source : str or None
        A delay's source layer.
    waves : int or None
        A delay's length in waves.
    """

    name: str
    kind: str
    n: int | None
    spec: ColumnSpec | None = None
    source: str | None = None
    waves: int | None = None


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Connection:
    """``source``'s lines feeding the column ``target``.

    Attributes
    ----------
    source, target : str
    init : (int, int) or ndarray of shape (N_target, n_lines)
        Initial weights: a uniform integer range (inclusive) or the weights (read-only copy).
    selector : None, slice, tuple of int or tuple of bool
        The receptive lines as the user gave them (None: all of ``source``'s lines).
    lines : ndarray of shape (n_lines,), int64, or None
        The selected lines, 0-based, read-only; None while ``source`` has no size yet.
    learn : bool
        Whether STDP changes these synapses.
    density : float in (0, 1]
    """

    source: str
    target: str
    init: object
    selector: object
    lines: np.ndarray | None
    learn: bool
    density: float

    __hash__ = None  # holds arrays

    def __eq__(self, other) -> bool:
        if not isinstance(other, Connection):
            return NotImplemented
        return (self.source == other.source and self.target == other.target and self.learn == other.learn
                and self.density == other.density and _same(self.init, other.init)
                and _same(self.selector, other.selector) and _same(self.lines, other.lines))


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape \
            and bool(np.array_equal(a, b))
    return a == b


def _selector(lines, source: str):
    """The user's ``lines`` normalised (None, slice, tuple of int, tuple of bool), else ValueError."""
    if lines is None or isinstance(lines, slice):
        return lines
    try:
        sel = np.asarray(lines)
    except Exception as exc:
        raise ValueError(f"lines {lines!r} do not select lines of {source!r}: {exc}") from None
    if sel.ndim != 1:
        raise ValueError(f"lines {lines!r} do not select lines of {source!r}: give a slice, a 1-D "
                         "sequence of line indices or a boolean mask")
    if sel.dtype == bool:
        return tuple(bool(b) for b in sel)
    if sel.size and sel.dtype.kind not in "iu":
        raise ValueError(f"lines {lines!r} do not select lines of {source!r}: line indices must be "
                         f"integers, got dtype {sel.dtype}")
    return tuple(int(i) for i in sel)


def _resolve_lines(selector, n: int, source: str) -> np.ndarray:
    """The line indices ``selector`` picks among ``n`` lines (read-only int64), else ValueError."""
    idx = np.arange(n)
    if selector is not None:
        try:
            if isinstance(selector, slice):
                idx = idx[selector]
            elif selector and isinstance(selector[0], bool):   # a mask over the source's lines
                if len(selector) != n:
                    raise ValueError(f"a boolean mask must have shape ({n},), got ({len(selector)},)")
                idx = idx[np.array(selector, dtype=bool)]
            else:
                idx = idx[np.array(selector, dtype=np.int64)]
        except (IndexError, ValueError) as exc:
            raise ValueError(f"lines {selector!r} do not select lines of {source!r} (0..{n - 1}): {exc}") from None
        if idx.size == 0:
            raise ValueError(f"lines {selector!r} select no line of {source!r}")
    return _frozen(idx.astype(np.int64))


@dataclass(frozen=True)
class Structure:
    """The layers and connections of a TNN network, in the order they were added.

    Build it with :meth:`add_input`, :meth:`add_column`, :meth:`add_delay` and
    :meth:`connect`; each returns a new ``Structure``. Layers run in the order they were
    added (docs/rules/tnn.md); a column reads inputs, delays and columns added before it.

    Attributes
    ----------
    layers : tuple of Layer
    connections : tuple of Connection
    """

    layers: tuple = ()
    connections: tuple = field(default=())

    # ------------------------------------------------------------------ building
    def layer(self, name: str) -> Layer:
        """The layer called ``name``; KeyError naming the layers when there is none."""
        for l in self.layers:
            if l.name == name:
                return l
        raise KeyError(f"no layer named {name!r}; layers: {[l.name for l in self.layers]}")

    def _check_new(self, name):
        if not isinstance(name, str) or not name:
            raise TypeError(f"layer name must be a non-empty string, got {name!r}")
        if any(l.name == name for l in self.layers):
            raise ValueError(f"a layer named {name!r} already exists")

    def add_input(self, name: str, n: int | None = None) -> "Structure":
        """An input layer of ``n`` lines (None: the data's width at fit, for one input only).

        The data's last dimension concatenates all inputs in the order they were added.
        """
        self._check_new(name)
        if n is None:
            if any(l.kind == "input" and l.n is None for l in self.layers):
                raise ValueError("only one input layer may take its size from the data (n=None)")
        else:
            n = check_int(n, f"input {name!r} size", 1)
        return replace(self, layers=self.layers + (Layer(name, "input", n),))

    def add_column(self, name: str, n_neurons: int, threshold: int, k: int, w_max: int = 16,
                   stdp: STDP | dict | None = None, dtype: str = "int32") -> "Structure":
        """A column of ``n_neurons`` temporal neurons with k-WTA and STDP.

        Parameters
        ----------
        name : str
        n_neurons : int >= 1
        threshold : int >= 1
        k : int in [1, n_neurons]
        w_max : int >= 1
        stdp : STDP, dict (notebook names accepted) or None (seed 004's column values)
        dtype : {"int32", "uint8"}
            The weights' storage, for the bound on ``w_max`` (uint8: 255).
        """
        self._check_new(name)
        spec = ColumnSpec.make(n_neurons, threshold, k, w_max, stdp, np.dtype(dtype))
        return replace(self, layers=self.layers + (Layer(name, "column", spec.n_neurons, spec=spec),))

    def add_delay(self, name: str, source: str, waves: int = 1) -> "Structure":
        """A delay (buffer) layer: the spikes of ``source`` ``waves`` waves later, same times."""
        self._check_new(name)
        src = self.layer(source)
        layer = Layer(name, "delay", src.n, source=source, waves=check_int(waves, "delay waves", 1))
        return replace(self, layers=self.layers + (layer,))

    def connect(self, source: str, target: str, init: tuple[int, int] | ArrayLike = (0, 1),
                lines: slice | ArrayLike | None = None, learn: bool = True,
                density: float = 1.0) -> "Structure":
        """Feed ``source``'s spikes to the column ``target``.

        Parameters
        ----------
        source, target : str
        init : (int, int) or array-like of shape (N_target, n_lines)
            Initial weights: integers drawn uniformly in [low, high] (inclusive), or the array.
        lines : slice, sequence of int, boolean mask or None
            The receptive slice: which of ``source``'s lines (0-based) feed the column.
        learn : bool
            Whether STDP changes these synapses (False: fixed weights).
        density : float in (0, 1]
            Keep each drawn weight with this probability, zero otherwise.
        """
        src, dst = self.layer(source), self.layer(target)
        if dst.kind != "column":
            raise ValueError(f"connection target {target!r} is a {dst.kind} layer; only columns "
                             "receive weighted connections")
        if src.kind == "column":
            names = [l.name for l in self.layers]
            if names.index(source) >= names.index(target):
                raise ValueError(f"column {target!r} cannot read column {source!r} of the same wave: "
                                 "it is added after it (feedback goes through a delay layer: "
                                 "add_delay)")
        if isinstance(density, bool) or not isinstance(density, numbers.Real) or not 0 < density <= 1:
            raise ValueError(f"density must be in (0, 1], got {density!r}")
        sel = _selector(lines, source)
        idx = None if src.n is None else _resolve_lines(sel, src.n, source)
        if not (isinstance(init, (tuple, list)) and len(init) == 2 and all(np.isscalar(v) for v in init)):
            init = _frozen(np.asarray(init))
        else:
            init = tuple(init)
        conn = Connection(source, target, init, sel, idx, bool(learn), float(density))
        return replace(self, connections=self.connections + (conn,))

    # ------------------------------------------------------------------ reading
    @property
    def n_inputs(self) -> int | None:
        """Input lines of the data (all input layers); None while one takes its size from the data."""
        sizes = [l.n for l in self.layers if l.kind == "input"]
        return None if any(n is None for n in sizes) else sum(sizes)

    def columns(self) -> list:
        """The column layers, in order."""
        return [l for l in self.layers if l.kind == "column"]

    def incoming(self, column: str) -> list:
        """The connections into ``column``, in the order they were made."""
        return [c for c in self.connections if c.target == column]

    def sized(self, width: int) -> "Structure":
        """This structure for data of ``width`` lines per wave: an input of open size gets the
        lines the others leave, delays follow their sources, and every ``lines`` selector is
        resolved (ValueError when the width does not fit)."""
        if all(l.n is not None for l in self.layers):
            return self
        fixed = sum(l.n for l in self.layers if l.kind == "input" and l.n is not None)
        sizes, layers = {}, []
        for l in self.layers:
            if l.kind == "input" and l.n is None:
                if width - fixed < 1:
                    raise ValueError(f"the data have {width} lines per wave, which leaves no line for "
                                     f"input {l.name!r} (the other inputs take {fixed})")
                l = replace(l, n=width - fixed)
            elif l.kind == "delay":
                l = replace(l, n=sizes[l.source])
            sizes[l.name] = l.n
            layers.append(l)
        conns = tuple(c if c.lines is not None else
                      replace(c, lines=_resolve_lines(c.selector, sizes[c.source], c.source))
                      for c in self.connections)
        return Structure(tuple(layers), conns)

    def __repr__(self) -> str:
        parts = [f"{l.name}:{l.kind}({'?' if l.n is None else l.n})" for l in self.layers]
        conns = [f"{c.source}->{c.target}" for c in self.connections]
        return f"Structure(layers=[{', '.join(parts)}], connections=[{', '.join(conns)}])"
