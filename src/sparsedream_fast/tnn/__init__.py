"""Temporal neural network columns with STDP (rule D, seed 004).

- :func:`encode`, :func:`image_rows`, :class:`WaveEncoder`: intensities to spike times.
- :class:`TNNColumn`: one column (ramp-no-leak neurons, k-WTA, stochastic STDP).
- :class:`TNNNetwork`: columns, delay layers and inputs connected by name; readout features
  for a scikit-learn classifier (``transform``).
- :class:`Structure`: a network's layers and connections (its ``structure`` parameter).
- :class:`STDP`: the rule's probabilities.
- :mod:`.presets`: the V8 script's network as far as the rule allows, a V8-like recurrent
  column, and the best slice network found here.

Backends: ``numpy`` (reference) and ``cpp``; both give the same weights bit for bit, since
every random draw comes from a counter-based generator (:mod:`.philox`). ``cuda`` (explicit
request only) is written to the same contract but has not yet run on a GPU.
"""
from .column import TNNColumn
from .config import STDP
from .encoding import WaveEncoder, encode, image_rows
from .network import TNNNetwork
from .structure import Structure
from . import presets

__all__ = ["TNNColumn", "TNNNetwork", "Structure", "STDP", "encode", "image_rows", "WaveEncoder", "presets"]
