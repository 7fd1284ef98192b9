"""A numpy stand-in for the part of CuPy that the GPU benchmarks' baselines use.

The notebooks' loops on cupy, the ``cupy.matmul`` floor and the checks of
``tools/gpu_benches.py`` run only where a GPU is. ``tools/device_check.sh rehearse`` puts
this module in cupy's place (``gpu_benches.py --emulator``), so those code paths run on
the CPU before the first GPU session, and ``tests/test_device_check.py`` runs them too.

It computes with numpy and says nothing about CuPy's numerics or speed. What it keeps of
CuPy is what a typo would trip over on the GPU: device arrays are a type of their own
(:class:`ndarray`, with ``get()``); ``asarray`` of a host array copies it (a later in-place
update on the device must not reach the caller's host array); and mixing a host
``numpy.ndarray`` (not a scalar or a 0-d array) with device arrays in an operation or a
function of this module raises ``TypeError``, as CuPy does.
"""
from __future__ import annotations

import functools
import types

import numpy as np

__version__ = "numpy stand-in (tools/numpy_cupy.py)"


def _host_in(objs, what):
    for x in objs:
        for y in (x if isinstance(x, (list, tuple)) else (x,)):
            if type(y) is np.ndarray and y.ndim > 0:
                raise TypeError(f"{what}: a host numpy.ndarray {y.shape} among device arrays "
                                "(cupy refuses the mix: cupy.asarray it first)")


def _plain(x):
    if isinstance(x, ndarray):
        return x.view(np.ndarray)
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(y) for y in x)
    return x


def _device(x):
    if isinstance(x, np.ndarray):
        return x.view(ndarray)
    if isinstance(x, np.generic):  # cupy's reductions give 0-d device arrays, not scalars
        return np.asarray(x).view(ndarray)
    if isinstance(x, tuple):
        return tuple(_device(y) for y in x)
    return x


class ndarray(np.ndarray):
    """A device array: numpy's, with CuPy's ``get()`` (the copy to the host)."""

    def get(self):
        """The array copied to the host, as a ``numpy.ndarray``."""
        return np.array(self.view(np.ndarray))

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kw):
        _host_in(inputs + (out or ()), f"{ufunc.__name__}.{method}")
        if out is not None:
            kw["out"] = tuple(_plain(o) for o in out)
        res = getattr(ufunc, method)(*_plain(inputs), **kw)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _device(res)

    def __array_function__(self, func, types_, args, kwargs):
        # CuPy dispatches numpy's functions on its arrays, but not on a mix with host arrays
        _host_in(tuple(args) + tuple(kwargs.values()), func.__name__)
        return _device(func(*_plain(args), **{k: _plain(v) for k, v in kwargs.items()}))


def asarray(a, dtype=None):
    """A device array of ``a``: ``a`` itself when it already is one of ``dtype``, else a copy."""
    if isinstance(a, ndarray) and (dtype is None or a.dtype == np.dtype(dtype)):
        return a
    return np.array(_plain(a), dtype=dtype).view(ndarray)


def array(a, dtype=None):
    """A device copy of ``a``."""
    return np.array(_plain(a), dtype=dtype).view(ndarray)


def asnumpy(a):
    """A host copy of ``a``."""
    return np.array(_plain(a))


class _Sync:
    def synchronize(self):
        pass


cuda = types.SimpleNamespace(Device=lambda *a: _Sync(), Stream=types.SimpleNamespace(null=_Sync()),
                             runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
_rng = np.random.default_rng(0)
random = types.SimpleNamespace(random=lambda *a, **k: _rng.random(*a, **k).view(ndarray))


def __getattr__(name):
    """numpy's function of that name on device arrays (its other names as they are)."""
    obj = getattr(np, name)
    if not callable(obj) or isinstance(obj, type):
        return obj

    @functools.wraps(obj)
    def on_device(*args, **kw):
        _host_in(tuple(args) + tuple(kw.values()), name)
        return _device(obj(*_plain(args), **{k: _plain(v) for k, v in kw.items()}))
    return on_device
