"""The BLAS of the compiled batch rules: scipy's gemm routines as PyCapsules, and its threads.

The C++ kernels of DreamComp and Krotov-Hopfield (``_core.dreamcomp_fit``,
``_core.krotov_fit``) take ``sgemm`` / ``dgemm`` at run time from
``scipy.linalg.cython_blas.__pyx_capi__`` (scipy is a dependency, so any environment that
runs the package has them; the extension links no BLAS). A fit runs its products on its
own threads, a block of rows of the weights per thread, each block one single-threaded
gemm call: a BLAS that spreads one call over its own thread pool would fight those
threads for the cores. :class:`SingleThreadedBlas` holds every BLAS loaded in the process
to one thread (threadpoolctl) for the duration of the call, then restores it.
"""
from __future__ import annotations

import threading
from functools import lru_cache

__all__ = ["gemm_capsules", "SingleThreadedBlas"]


@lru_cache(maxsize=None)
def gemm_capsules():
    """``(sgemm, dgemm)``: scipy's cython_blas capsules (their names are their C signatures)."""
    from scipy.linalg import cython_blas
    capi = cython_blas.__pyx_capi__
    return capi["sgemm"], capi["dgemm"]


_controller = None


def _blas_controller():
    """threadpoolctl's controller of the BLAS libraries loaded here (None without any)."""
    global _controller
    if _controller is None:
        try:
            gemm_capsules()  # scipy's BLAS loaded, so that it is found and limited too
            from threadpoolctl import ThreadpoolController
            ctl = ThreadpoolController().select(user_api="blas")
            _controller = ctl if ctl.lib_controllers else False
        except Exception:  # no threadpoolctl, or a library it cannot handle
            _controller = False
    return _controller or None


_lock = threading.Lock()
_holders = 0      # fits inside a SingleThreadedBlas now (several Python threads may run fits)
_restore = []     # (library controller, its thread count before the first holder)


class SingleThreadedBlas:
    """Context holding the process's BLAS libraries to one thread (when ``active``).

    ``ok`` says whether they are: False when threadpoolctl is missing or finds no BLAS, in
    which case the caller must not call the BLAS from several threads at once. Nested and
    concurrent holders (fits in several Python threads) are counted: the first one sets
    the limit, the last one restores the libraries' settings.
    """

    def __init__(self, active: bool = True):
        self.ctl = _blas_controller() if active else None
        self.ok = self.ctl is not None or not active

    def __enter__(self):
        global _holders, _restore
        if self.ctl is None:
            return self
        with _lock:
            if _holders == 0:
                _restore = [(lc, lc.num_threads) for lc in self.ctl.lib_controllers]
                for lc, n in _restore:
                    if n != 1:
                        lc.set_num_threads(1)
            _holders += 1
        return self

    def __exit__(self, *exc):
        global _holders
        if self.ctl is None:
            return False
        with _lock:
            _holders -= 1
            if _holders == 0:
                for lc, n in _restore:
                    if n != 1:
                        lc.set_num_threads(n)
        return False
