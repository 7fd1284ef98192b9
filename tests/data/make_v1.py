"""Writes tests/data/*_v1.npz with the code of main at bcc1a9f (SparseDream/1, TNNNetwork/1),
and the state after one more epoch (expected_*), as regression inputs for the loaders."""
import numpy as np
import scipy.sparse as sp
import sparsedream_fast as sdf
out = "tests/data/"
X = np.random.default_rng(5).random((30, 9))
exp = {}
runs = {
  "stencil": dict(lateral=sdf.lateral.box(1, 0.2), trace=0.5, error_clip=1.0),
  "learned": dict(competition="normalized_lateral", lateral=sdf.lateral.random(radius=1, low=0.0, high=0.3),
                  learn_lateral=True, w_max=1.0, clip_every=5),
  "matrix": dict(lateral=sp.random(12, 12, density=0.3, random_state=1) * 0.1,
                 init=np.random.default_rng(2).uniform(0.1, 0.2, (12, 9)), competition="drive"),
}
for name, kw in runs.items():
    m = sdf.SparseDream(n_inputs=9, grid=(3, 4), k=2, lr=0.05, dtype="float64", backend="numpy", seed=7, **kw)
    m.fit(X, epochs=2)
    m.save(out + f"sparsedream_{name}_v1.npz")
    m.set_params(warm_start=True)
    m.fit(X, epochs=1)
    exp[f"{name}_W"] = m.weights_
    exp[f"{name}_trace"] = m.trace_
    exp[f"{name}_lateral"] = m.lateral_.toarray()
    exp[f"{name}_n_steps"] = np.array(m.n_steps_)
S = np.random.default_rng(3).integers(0, 9, (6, 3, 8))
net = sdf.TNNNetwork(T=8, seed=4)
net.add_input("px", 8).add_column("c", 5, threshold=6, k=2, w_max=8).add_delay("d", "c")
net.connect("px", "c", init=(0, 3)).connect("d", "c", init=np.random.default_rng(1).integers(0, 4, (5, 5)))
net.fit(S)
net.save(out + "tnn_network_v1.npz")
net.fit(S)
exp["tnn_W"] = net.weights_["c"]
exp["tnn_n_waves"] = np.array(net.n_waves_learned_)
np.savez(out + "v1_expected.npz", **exp)
