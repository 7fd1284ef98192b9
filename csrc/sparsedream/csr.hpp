// CSR lateral matrices (sparsedream_fast/lateral.py, CSR): matvec over a range of rows,
// transposed matvec over the active rows, and the learned-lateral update (rule A.9).
// Summation orders are scipy's (csr_matvec, and the csc_matvec of L.T), so float32 results
// equal the reference's to the bit.
#pragma once

#include "common.hpp"

namespace sd {

template <class T>
struct CsrView {
    const i64* indptr = nullptr;  ///< (N+1,)
    const i32* indices = nullptr; ///< (nnz,), sorted within rows
    T* data = nullptr;            ///< (nnz,), learned in place
    i64 n = 0;
};

/// out[i] = sum_k data[k] * x[indices[k]] over row i, for i in [n0, n1).
template <class T>
inline void csr_matvec_rows(const CsrView<T>& L, const T* x, T* out, i64 n0, i64 n1) {
    for (i64 i = n0; i < n1; ++i) {
        T s = 0;
        for (i64 k = L.indptr[i]; k < L.indptr[i + 1]; ++k) s += L.data[k] * x[L.indices[k]];
        out[i] = s;
    }
}

/// u += L^T o restricted to the rows `rows` (ascending, the rows with o != 0): for each such
/// row i, u[m] += L[i, m] * o[i]. u must be zero at the touched columns beforehand.
template <class T>
inline void csr_rmatvec_rows(const CsrView<T>& L, const T* o, const i64* rows, i64 nrows, T* u) {
    for (i64 t = 0; t < nrows; ++t) {
        const i64 i = rows[t];
        const T oi = o[i];
        for (i64 k = L.indptr[i]; k < L.indptr[i + 1]; ++k) {
            const i64 m = L.indices[k];
            u[m] = u[m] + L.data[k] * oi;
        }
    }
}

/// Learned-lateral update (docs/rules/sparsedream.md, step 9), in place on L.data:
/// u = L^T o (L before the update), then for active i and stored (i, m):
/// L[i, m] += ((lat_lr * o_i) * L[i, m]) * ((o_m - u_m) / max(u_m, prec)).
/// `rows` ascending (the active rows); u: N-entry scratch, zero on entry and on return.
template <class T>
inline void csr_learn(CsrView<T>& L, const T* o, const i64* rows, i64 nrows, T lat_lr, T prec,
                      T* u) {
    csr_rmatvec_rows(L, o, rows, nrows, u);
    for (i64 t = 0; t < nrows; ++t) {
        const i64 i = rows[t];
        const T a = lat_lr * o[i];
        for (i64 k = L.indptr[i]; k < L.indptr[i + 1]; ++k) {
            const i64 m = L.indices[k];
            const T um = u[m];
            const T den = (um != um || um > prec) ? um : prec;
            const T ratio = (o[m] - um) / den;
            L.data[k] = L.data[k] + (a * L.data[k]) * ratio;
        }
    }
    for (i64 t = 0; t < nrows; ++t) {
        const i64 i = rows[t];
        for (i64 k = L.indptr[i]; k < L.indptr[i + 1]; ++k) u[L.indices[k]] = T(0);
    }
}

}  // namespace sd
