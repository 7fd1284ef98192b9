// CSR lateral matrices (sparsedream_fast/lateral.py, CSR): matvec over a range of rows,
// transposed matvec over the active rows, and the learned-lateral update (rule A.9).
// Summation orders are scipy's (csr_matvec, and the csc_matvec of L.T), so float32 results
// equal the reference's to the bit.
#pragma once

#include "common.hpp"
#include "rule_a_update.hpp"

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

/// One learned-lateral entry after the update (rule A.9): x + ((lat_lr * o_i) * x) * ratio,
/// ratio = (o_m - u_m) / max(u_m, prec), with a = lat_lr * o_i; 0 where that would change
/// the entry's sign (rule_a_updated: the same overshoot as the weights').
template <class T>
inline T csr_learned(T x, T a, T om, T um, T prec) {
    const T den = (um != um || um > prec) ? um : prec;
    const T ratio = (om - um) / den;
    return rule_a_updated(x, a, ratio);
}

/// True when the learned-lateral update of the rows `rows` would write only finite values.
/// u = L^T o must be computed (csr_rmatvec_rows) and is left as it is.
template <class T>
inline bool csr_learn_finite(const CsrView<T>& L, const T* o, const i64* rows, i64 nrows, T lat_lr, T prec,
                             const T* u) {
    for (i64 t = 0; t < nrows; ++t) {
        const i64 i = rows[t];
        const T a = lat_lr * o[i];
        for (i64 k = L.indptr[i]; k < L.indptr[i + 1]; ++k) {
            const i64 m = L.indices[k];
            const T x = csr_learned(L.data[k], a, o[m], u[m], prec);
            if (!(x - x == T(0))) return false;  // inf or NaN
        }
    }
    return true;
}

/// Learned-lateral update (docs/rules/sparsedream.md, step 9), in place on L.data, from
/// u = L^T o (L before the update, computed by csr_rmatvec_rows): for active i and stored
/// (i, m): L[i, m] += ((lat_lr * o_i) * L[i, m]) * ((o_m - u_m) / max(u_m, prec)). Then u
/// is zeroed again at the touched columns. `rows` ascending (the active rows).
template <class T>
inline void csr_learn_apply(CsrView<T>& L, const T* o, const i64* rows, i64 nrows, T lat_lr, T prec, T* u) {
    for (i64 t = 0; t < nrows; ++t) {
        const i64 i = rows[t];
        const T a = lat_lr * o[i];
        for (i64 k = L.indptr[i]; k < L.indptr[i + 1]; ++k) {
            const i64 m = L.indices[k];
            L.data[k] = csr_learned(L.data[k], a, o[m], u[m], prec);
        }
    }
    for (i64 t = 0; t < nrows; ++t) {
        const i64 i = rows[t];
        for (i64 k = L.indptr[i]; k < L.indptr[i + 1]; ++k) u[L.indices[k]] = T(0);
    }
}

/// u (N entries, zero on entry) back to zero after csr_rmatvec_rows over `rows`, without
/// an update (a step that stops before it writes).
template <class T>
inline void csr_clear_u(const CsrView<T>& L, const i64* rows, i64 nrows, T* u) {
    for (i64 t = 0; t < nrows; ++t) {
        const i64 i = rows[t];
        for (i64 k = L.indptr[i]; k < L.indptr[i + 1]; ++k) u[L.indices[k]] = T(0);
    }
}

/// The whole learned-lateral update: u = L^T o, then csr_learn_apply. u: N-entry scratch,
/// zero on entry and on return.
template <class T>
inline void csr_learn(CsrView<T>& L, const T* o, const i64* rows, i64 nrows, T lat_lr, T prec,
                      T* u) {
    csr_rmatvec_rows(L, o, rows, nrows, u);
    csr_learn_apply(L, o, rows, nrows, lat_lr, prec, u);
}

}  // namespace sd
