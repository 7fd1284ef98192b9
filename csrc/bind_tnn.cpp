// pybind11 bindings of the TNN columns (rule D) in module _core: one call runs a whole
// presentation of a network program (sparsedream_fast/tnn/program.py) without the GIL.
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "bind_common.hpp"
#include "sparsedream/tnn.hpp"

namespace py = pybind11;
using sd::i32;
using sd::i64;
using sd_bind::check_shape;
using sd_bind::get_ptr;
using sd_bind::item;

namespace {

std::vector<i32> int_vector(const py::array& a, const char* name, i64 n_lines) {
    check_shape(a, name, {-1});
    const i32* p = get_ptr<i32>(a, name, false);
    std::vector<i32> v(p, p + a.shape(0));
    for (i32 x : v)
        if (x < 0 || x >= n_lines) throw py::value_error(std::string(name) + " holds a line outside [0, n_lines)");
    return v;
}

/// Every line is written by at most one layer per wave (inputs, delay stages, columns), and a
/// column reads only lines written before it in the wave: what the Python
/// builder guarantees (tnn/program.py), checked because the kernels' way of keeping the
/// previous wave relies on it.
template <class Col>
void check_wave_order(i64 n_in, i64 n_lines, const std::vector<i32>& delay_dst, const std::vector<Col>& cols) {
    std::vector<i64> owner(size_t(n_lines), -2);  // -2 none, -1 input or delay, c column c
    for (i64 m = 0; m < n_in; ++m) owner[size_t(m)] = -1;
    for (i32 m : delay_dst) {
        if (owner[size_t(m)] != -2) throw py::value_error("delay_dst: a line written twice in a wave");
        owner[size_t(m)] = -1;
    }
    for (size_t c = 0; c < cols.size(); ++c)
        for (i64 j = cols[c].out0; j < cols[c].out0 + cols[c].n; ++j) {
            if (owner[size_t(j)] != -2) throw py::value_error("column lines overlap other lines");
            owner[size_t(j)] = i64(c);
        }
    for (i64 v : owner)
        if (v == -2) throw py::value_error("a line is written by no input, delay or column");
    for (size_t c = 0; c < cols.size(); ++c)
        for (i64 i = 0; i < cols[c].d; ++i)
            if (owner[size_t(cols[c].in_lines[i])] >= i64(c))
                throw py::value_error("a column reads its own lines or a later column's (feedback needs a delay)");
}

template <class Wt>
py::tuple run_typed(const py::dict& prog, const py::list& columns, const py::array& data, bool learn,
                    std::uint64_t wave0, std::uint32_t k0, std::uint32_t k1) {
    sd::TnnProgram<Wt> p;
    p.T = item<int>(prog, "T");
    if (p.T < 1 || p.T > 255) throw py::value_error("T must be in [1, 255]");
    p.n_in = item<i64>(prog, "n_in");
    p.n_lines = item<i64>(prog, "n_lines");
    if (p.n_in < 1 || p.n_lines < p.n_in) throw py::value_error("inconsistent n_in / n_lines");
    p.delay_src = int_vector(item<py::array>(prog, "delay_src"), "delay_src", p.n_lines);
    p.delay_dst = int_vector(item<py::array>(prog, "delay_dst"), "delay_dst", p.n_lines);
    if (p.delay_src.size() != p.delay_dst.size()) throw py::value_error("delay_src and delay_dst differ in length");
    p.record = int_vector(item<py::array>(prog, "record"), "record", p.n_lines);
    std::vector<py::array> keep;  // the arrays stay referenced while the kernel runs
    for (auto h : columns) {
        py::dict c = h.cast<py::dict>();
        sd::TnnColumn<Wt> col;
        col.n = item<i64>(c, "n");
        col.theta = item<i64>(c, "theta");
        col.k = item<i64>(c, "k");
        col.w_max = item<i64>(c, "w_max");
        col.out0 = item<i64>(c, "out0");
        if (col.n < 1 || col.k < 1 || col.k > col.n || col.theta < 1 || col.w_max < 1)
            throw py::value_error("column: need n >= 1, 1 <= k <= n, theta >= 1, w_max >= 1");
        if (sizeof(Wt) == 1 && col.w_max > 255) throw py::value_error("uint8 weights need w_max <= 255");
        if (col.out0 < 0 || col.out0 + col.n > p.n_lines) throw py::value_error("column lines outside [0, n_lines)");
        py::array params = item<py::array>(c, "params");
        check_shape(params, "params", {5});
        const double* q = get_ptr<double>(params, "params", false);
        col.stdp = sd::StdpParams{q[0], q[1], q[2], q[3], q[4]};
        py::array in_lines = item<py::array>(c, "in_lines");
        check_shape(in_lines, "in_lines", {-1});
        col.d = in_lines.shape(0);
        col.in_lines = get_ptr<i32>(in_lines, "in_lines", false);
        for (i64 i = 0; i < col.d; ++i)
            if (col.in_lines[i] < 0 || col.in_lines[i] >= p.n_lines) throw py::value_error("in_lines outside [0, n_lines)");
        py::array plastic = item<py::array>(c, "plastic");
        check_shape(plastic, "plastic", {col.d});
        col.plastic = get_ptr<std::uint8_t>(plastic, "plastic", false);
        py::array W = item<py::array>(c, "W");
        check_shape(W, "W", {col.n, col.d});
        col.W = get_ptr<Wt>(W, "W", true);
        // the kernel trusts 0 <= w <= w_max (it indexes tables of F+ / F- by weight value)
        for (i64 m = 0; m < col.n * col.d; ++m)
            if (i64(col.W[m]) < 0 || i64(col.W[m]) > col.w_max) throw py::value_error("W holds weights outside [0, w_max]");
        keep.insert(keep.end(), {params, in_lines, plastic, W});
        p.columns.push_back(col);
    }
    check_wave_order(p.n_in, p.n_lines, p.delay_dst, p.columns);
    check_shape(data, "data", {-1, -1, p.n_in});
    const std::uint8_t* x = get_ptr<std::uint8_t>(data, "data", false);
    const i64 S = data.shape(0), n_waves = data.shape(1);
    {   // the kernel trusts times <= T (they index arrays of T + 1)
        const i64 total = S * n_waves * p.n_in;
        for (i64 m = 0; m < total; ++m)
            if (x[m] > p.T) throw py::value_error("data holds spike times above T");
    }
    const i64 R = i64(p.record.size());
    py::array_t<std::uint8_t> rec({S, n_waves, R});
    std::uint8_t* r = rec.mutable_data();
    std::uint64_t wave = wave0;
    {
        py::gil_scoped_release nogil;
        if (learn || S < 2) {
            wave = sd::tnn_run(p, x, 0, S, n_waves, learn, wave0, k0, k1, r);
        } else {
            // inference: sequences are independent (weights are only read)
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 4)
#endif
            for (i64 s = 0; s < S; ++s) sd::tnn_run(p, x, s, s + 1, n_waves, false, wave0, k0, k1, r);
        }
    }
    return py::make_tuple(rec, wave);
}

}  // namespace

void bind_tnn(py::module_& m) {
    m.def(
        "tnn_run",
        [](const py::dict& prog, const py::list& columns, const py::array& data, bool learn, std::uint64_t wave0,
           std::uint32_t k0, std::uint32_t k1, const std::string& wdtype) {
            if (wdtype == "int32") return run_typed<std::int32_t>(prog, columns, data, learn, wave0, k0, k1);
            if (wdtype == "uint8") return run_typed<std::uint8_t>(prog, columns, data, learn, wave0, k0, k1);
            throw py::value_error("weight dtype must be 'int32' or 'uint8'");
        },
        py::arg("prog"), py::arg("columns"), py::arg("data"), py::arg("learn"), py::arg("wave0"), py::arg("k0"),
        py::arg("k1"), py::arg("wdtype"),
        "Run a TNN network program over data (S, n_waves, n_in) uint8 spike times; the columns' "
        "weights are updated in place when learning. Returns (recorded (S, n_waves, R) uint8, wave).");
    m.def(
        "philox4x32_10",
        [](std::uint32_t c0, std::uint32_t c1, std::uint32_t c2, std::uint32_t c3, std::uint32_t k0, std::uint32_t k1) {
            const sd::U32x4 r = sd::philox4x32_10(c0, c1, c2, c3, k0, k1);
            return py::make_tuple(r.v[0], r.v[1], r.v[2], r.v[3]);
        },
        "Philox4x32-10 of one counter and key (for tests against the numpy twin).");
}
