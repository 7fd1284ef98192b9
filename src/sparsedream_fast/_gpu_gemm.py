"""Options of the minibatch products of the batch rules on the GPU (DreamComp, Krotov-Hopfield).

The CUDA module opens cuBLAS at run time (it neither links nor needs it): it tries the
libraries :func:`cublas_candidates` lists and, when none loads, runs the products on its
own tiled GEMM kernel. Which one a fit used is in the dict its ``_fit_info`` returns.
"""
from __future__ import annotations

import glob
import os
import sys

__all__ = ["GEMM_KINDS", "cublas_candidates", "gemm_args"]

#: gemm= values and their codes in the CUDA module
GEMM_KINDS = {"auto": 0, "cublas": 1, "kernel": 2}
#: the candidates passed with the first fit that may use cuBLAS
_LIBS = None


def cublas_candidates() -> list[str]:
    """Where to look for cuBLAS, in order: ``$SPARSEDREAM_CUBLAS`` (a path), the system's
    loader by name (which also finds a copy CuPy has already loaded), NVIDIA's pip wheels
    (``nvidia/cu13/lib``, ``nvidia/cublas/lib``), then ``$CUDA_PATH``, ``$CUDA_HOME`` and
    ``/usr/local/cuda``."""
    out = []
    if os.environ.get("SPARSEDREAM_CUBLAS"):
        out.append(os.environ["SPARSEDREAM_CUBLAS"])
    out += ["libcublas.so.13", "libcublas.so.12"]
    dirs = []
    for base in sys.path:
        dirs += [os.path.join(base, "nvidia", "cu13", "lib"), os.path.join(base, "nvidia", "cublas", "lib")]
    for env in ("CUDA_PATH", "CUDA_HOME"):
        if os.environ.get(env):
            dirs.append(os.path.join(os.environ[env], "lib64"))
    dirs.append("/usr/local/cuda/lib64")
    for d in dirs:
        out += sorted(glob.glob(os.path.join(d, "libcublas.so.1[0-9]*")), reverse=True)
    out.append("libcublas.so")
    return list(dict.fromkeys(out))


def gemm_args(gemm: str, graphs: bool) -> dict:
    """Keyword arguments ``gemm``, ``cublas_libs``, ``graphs`` of the CUDA module's batch fits.

    Parameters
    ----------
    gemm : {"auto", "cublas", "kernel"}
        "auto": cuBLAS when it loads, else the own kernel; "cublas": cuBLAS or a ValueError;
        "kernel": always the own kernel.
    graphs : bool
        Replay every epoch after the first as a CUDA graph.
    """
    global _LIBS
    if gemm not in GEMM_KINDS:
        raise ValueError(f"GEMM must be one of {tuple(GEMM_KINDS)}, got {gemm!r}")
    if gemm != "kernel" and _LIBS is None:
        # the module loads cuBLAS once per process, from the first list it is given: no
        # need to walk sys.path again on every fit
        _LIBS = cublas_candidates()
    return dict(gemm=GEMM_KINDS[gemm], cublas_libs=_LIBS if gemm != "kernel" else [], graphs=bool(graphs))
