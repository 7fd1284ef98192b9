// Argument checks shared by the pybind11 binding files of module sparsedream_fast._core.
// Arrays arrive as numpy arrays, are checked for dtype, C-contiguity, writability and shape
// here, then the compute runs without the GIL on raw pointers.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <initializer_list>
#include <sstream>
#include <string>

#include "sparsedream/common.hpp"

namespace sd_bind {
namespace py = pybind11;
using sd::i64;

/// True when a's dtype is equivalent to T's (numpy's PyArray_EquivTypes: same kind, size and
/// byte order). Never compare dtype objects by identity: an array restored by pickle, or made
/// by another library, carries its own dtype instance that equals, but is not, numpy's
/// canonical one.
template <class T>
bool has_dtype(const py::array& a) {
    return a.dtype().equal(py::dtype::of<T>());
}

template <class T>
T* get_ptr(const py::array& a, const char* name, bool writable) {
    if (!has_dtype<T>(a)) {
        std::ostringstream s;
        s << name << " must have dtype " << py::str(py::dtype::of<T>()).cast<std::string>() << ", got "
          << py::str(a.dtype()).cast<std::string>();
        throw py::type_error(s.str());
    }
    if (!(a.flags() & py::array::c_style))
        throw py::value_error(std::string(name) + " must be C-contiguous");
    if (writable && !a.writeable()) throw py::value_error(std::string(name) + " must be writable");
    return static_cast<T*>(const_cast<void*>(a.data()));
}

inline void check_shape(const py::array& a, const char* name, std::initializer_list<i64> shape) {
    bool ok = a.ndim() == py::ssize_t(shape.size());
    int d = 0;
    for (i64 s : shape) {
        if (!ok) break;
        if (s >= 0 && a.shape(d) != s) ok = false;
        ++d;
    }
    if (!ok) {
        std::ostringstream s;
        s << name << " must have shape (";
        d = 0;
        for (i64 x : shape) s << (d++ ? ", " : "") << (x >= 0 ? std::to_string(x) : std::string("any"));
        s << "), got (";
        for (int i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
        s << ")";
        throw py::value_error(s.str());
    }
}

template <class V>
V item(const py::dict& d, const char* key) {
    if (!d.contains(key)) throw py::key_error(std::string("cfg is missing '") + key + "'");
    return d[key].cast<V>();
}

/// True when a has dtype float32 / float64 (the kernels' two value types).
inline bool is_f32(const py::array& a) { return has_dtype<float>(a); }
inline bool is_f64(const py::array& a) { return has_dtype<double>(a); }

/// TypeError naming the argument and its dtype, for an array neither float32 nor float64.
[[noreturn]] inline void bad_dtype(const char* name, const py::array& a) {
    throw py::type_error(std::string(name) + " must be float32 or float64, got " +
                         py::str(a.dtype()).cast<std::string>());
}

/// batches: int64 (..., B) with at least 1 dimension; every entry in [0, n). Returns the
/// pointer, the number of batches and B.
inline const i64* check_batches(const py::array& batches, i64 n, i64& nbatches, i64& B) {
    if (batches.ndim() < 1) throw py::value_error("batches must have at least one dimension (..., batch_size)");
    const i64* p = get_ptr<i64>(batches, "batches", false);
    B = batches.shape(batches.ndim() - 1);
    nbatches = B > 0 ? i64(batches.size()) / B : 0;
    const i64 total = i64(batches.size());
    for (i64 t = 0; t < total; ++t)
        if (p[t] < 0 || p[t] >= n)
            throw py::index_error("batches: sample index " + std::to_string(p[t]) + " out of range for " +
                                  std::to_string(n) + " samples");
    return p;
}

}  // namespace sd_bind

// Entry points of the other binding files, registered by bindings.cpp's PYBIND11_MODULE.
void bind_batch_rules(pybind11::module_& m);  // bind_batch.cpp: DreamComp, Krotov-Hopfield
void bind_tnn(pybind11::module_& m);          // bind_tnn.cpp: TNN columns
