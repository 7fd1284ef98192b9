"""
The topographic map of notebook 001, and its activity
=====================================================

An 80 x 80 map learns 20 x 20 windows of a random walk over a tapestry of handwritten
digits: 5 winners per frame, box lateral excitation of radius 2 and strength 0.1 in the
competition, the drive as the winners' activity, the reconstruction error clipped to
[-1, 1], weights from U(0.15, 0.16). This is ``sparsedream demo``.
"""
import sparsedream_fast as sdf
from sparsedream_fast import metrics, plot
from sparsedream_fast.data import digit_tapestry_frames

X, source = digit_tapestry_frames(n_frames=10_000, seed=0)
m = sdf.SparseDream(n_inputs=400, grid=(80, 80), k=5, lr=0.1, competition="lateral", output="drive",
                    lateral=sdf.lateral.box(radius=2, strength=0.1), error_clip=1.0,
                    init=(0.15, 0.16), seed=0)
m.fit(X, epochs=3)
print(source)
print({k: round(v, 4) for k, v in metrics.evaluate(m, X[:1000]).items()
       if k in ("reconstruction_mse", "quantization_error", "topographic_error")})

# %%
# The weight tapestry: every neuron's 400 weights as a 20 x 20 tile at its place on the
# grid. Neighbouring tiles hold similar strokes: the lateral excitation made the map
# topographic.
fig = plot.weight_tapestry(m, title="80 x 80 map after 3 epochs: one tile per neuron")

# %%
# A close-up of 16 x 16 neurons in the middle of the map.
fig = plot.weight_tapestry(m, region=(32, 48, 32, 48))

# %%
# The activity, frame by frame (the notebook's animation): the input window, the 6,400
# neurons' activity on the grid (red circles: the 5 winners of the frame), and the
# reconstruction from the winners. Consecutive frames of the walk overlap, and the winners
# move smoothly over the map.
ani = plot.animate_activity(m, X[:40], fps=6, dpi=60)
