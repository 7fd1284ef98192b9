"""
A learned lateral map (notebook 000)
====================================

Notebook 000 learned the lateral excitation too: each neuron's lateral weights to its
neighbours (radius 2) start random and follow the multiplicative rule of step 9
(:doc:`../rules/sparsedream`). The competition is ``normalized_lateral`` and the winners'
activity is their competition value, as in the notebook's cells In [19]-[20].
"""
import sparsedream_fast as sdf
from sparsedream_fast import plot
from sparsedream_fast.data import digit_tapestry_frames

X, _ = digit_tapestry_frames(n_frames=10_000, seed=0)
m = sdf.SparseDream(n_inputs=400, grid=(20, 20), k=5, lr=0.01, competition="normalized_lateral",
                    output="competition", lateral=sdf.lateral.random(radius=2, low=0.0, high=1.0),
                    learn_lateral=True, init=(0.0, 1.0), seed=0)
m.fit(X, epochs=20, steps_per_epoch=2500)

# %%
# One neuron's learned lateral weights: how strongly each neighbour feeds its competition.
# The picture shows the neighbourhood (the connections exist only within radius 2; outside
# they are zero and stay zero), the neuron itself outlined in red. Learning concentrates
# the excitation on a few neighbours: most of the 24 connections, drawn at random between 0
# and 1, decay towards 0.
fig = plot.lateral_map(m, neuron=8 * 20 + 9)

# %%
# The same neighbourhood as prototypes: each neighbour's tile scaled by its lateral weight
# to the neuron (red), the neuron's own prototype negated for reference (blue).
fig = plot.lateral_tapestry(m, neuron=8 * 20 + 9)
