// The arguments of the tnn_run entry points (_core and _cuda alike), parsed and checked once
// here: a program dict, a list of column dicts, uint8 data and the weights' dtype name, as
// sparsedream_fast/tnn/program.py's kernel_args builds them. Every check runs before any
// kernel (and before any GPU use), so bad arguments raise ValueError / TypeError.
#pragma once

#include <string>
#include <vector>

#include "bind_common.hpp"
#include "sparsedream/tnn_program.hpp"

namespace sd_bind {

struct TnnArgs {
    sd::TnnProgramDesc prog;
    std::vector<py::array> keep;  // the arrays stay referenced while a kernel runs
    const std::uint8_t* data = nullptr;
    std::int64_t S = 0, n_waves = 0;
};

inline std::vector<std::int32_t> tnn_lines(const py::array& a, const char* name, std::int64_t n_lines) {
    check_shape(a, name, {-1});
    const std::int32_t* p = get_ptr<std::int32_t>(a, name, false);
    std::vector<std::int32_t> v(p, p + a.shape(0));
    for (std::int32_t x : v)
        if (x < 0 || x >= n_lines) throw py::value_error(std::string(name) + " holds a line outside [0, n_lines)");
    return v;
}

/// Every line is written by at most one layer per wave (inputs, delay stages, columns), and a
/// column reads only lines written before it in the wave: what the Python builder guarantees
/// (tnn/program.py), checked because the kernels' way of keeping the previous wave relies on it.
inline void check_tnn_wave_order(const sd::TnnProgramDesc& p) {
    std::vector<std::int64_t> owner(size_t(p.n_lines), -2);  // -2 none, -1 input or delay, c column c
    for (std::int64_t m = 0; m < p.n_in; ++m) owner[size_t(m)] = -1;
    for (std::int32_t m : p.delay_dst) {
        if (owner[size_t(m)] != -2) throw py::value_error("delay_dst: a line written twice in a wave");
        owner[size_t(m)] = -1;
    }
    for (size_t c = 0; c < p.columns.size(); ++c)
        for (std::int64_t j = p.columns[c].out0; j < p.columns[c].out0 + p.columns[c].n; ++j) {
            if (owner[size_t(j)] != -2) throw py::value_error("column lines overlap other lines");
            owner[size_t(j)] = std::int64_t(c);
        }
    for (std::int64_t v : owner)
        if (v == -2) throw py::value_error("a line is written by no input, delay or column");
    for (size_t c = 0; c < p.columns.size(); ++c)
        for (std::int64_t i = 0; i < p.columns[c].d; ++i)
            if (owner[size_t(p.columns[c].in_lines[i])] >= std::int64_t(c))
                throw py::value_error("a column reads its own lines or a later column's (feedback needs a delay)");
}

inline TnnArgs parse_tnn_args(const py::dict& prog, const py::list& columns, const py::array& data,
                              const std::string& wdtype) {
    TnnArgs a;
    sd::TnnProgramDesc& p = a.prog;
    if (wdtype != "int32" && wdtype != "uint8") throw py::value_error("weight dtype must be 'int32' or 'uint8'");
    p.weight_bytes = wdtype == "uint8" ? 1 : 4;
    p.T = item<int>(prog, "T");
    if (p.T < 1 || p.T > 255) throw py::value_error("T must be in [1, 255]");
    p.n_in = item<std::int64_t>(prog, "n_in");
    p.n_lines = item<std::int64_t>(prog, "n_lines");
    if (p.n_in < 1 || p.n_lines < p.n_in) throw py::value_error("inconsistent n_in / n_lines");
    p.delay_src = tnn_lines(item<py::array>(prog, "delay_src"), "delay_src", p.n_lines);
    p.delay_dst = tnn_lines(item<py::array>(prog, "delay_dst"), "delay_dst", p.n_lines);
    if (p.delay_src.size() != p.delay_dst.size()) throw py::value_error("delay_src and delay_dst differ in length");
    p.record = tnn_lines(item<py::array>(prog, "record"), "record", p.n_lines);
    for (auto h : columns) {
        py::dict c = h.cast<py::dict>();
        sd::TnnColumnDesc col;
        col.n = item<std::int64_t>(c, "n");
        col.theta = item<std::int64_t>(c, "theta");
        col.k = item<std::int64_t>(c, "k");
        col.w_max = item<std::int64_t>(c, "w_max");
        col.out0 = item<std::int64_t>(c, "out0");
        if (col.n < 1 || col.k < 1 || col.k > col.n || col.theta < 1 || col.w_max < 1)
            throw py::value_error("column: need n >= 1, 1 <= k <= n, theta >= 1, w_max >= 1");
        if (p.weight_bytes == 1 && col.w_max > 255) throw py::value_error("uint8 weights need w_max <= 255");
        if (col.out0 < 0 || col.out0 + col.n > p.n_lines) throw py::value_error("column lines outside [0, n_lines)");
        py::array params = item<py::array>(c, "params");
        check_shape(params, "params", {5});
        const double* q = get_ptr<double>(params, "params", false);
        for (int m = 0; m < 5; ++m) col.p[m] = q[m];
        py::array in_lines = item<py::array>(c, "in_lines");
        check_shape(in_lines, "in_lines", {-1});
        col.d = in_lines.shape(0);
        col.in_lines = get_ptr<std::int32_t>(in_lines, "in_lines", false);
        for (std::int64_t i = 0; i < col.d; ++i)
            if (col.in_lines[i] < 0 || col.in_lines[i] >= p.n_lines) throw py::value_error("in_lines outside [0, n_lines)");
        py::array plastic = item<py::array>(c, "plastic");
        check_shape(plastic, "plastic", {col.d});
        col.plastic = get_ptr<std::uint8_t>(plastic, "plastic", false);
        py::array W = item<py::array>(c, "W");
        check_shape(W, "W", {col.n, col.d});
        col.W = p.weight_bytes == 1 ? static_cast<void*>(get_ptr<std::uint8_t>(W, "W", true))
                                    : static_cast<void*>(get_ptr<std::int32_t>(W, "W", true));
        // the kernels trust 0 <= w <= w_max (the C++ one indexes tables of F+ / F- by weight)
        for (std::int64_t m = 0; m < col.n * col.d; ++m) {
            const std::int64_t w = p.weight_bytes == 1 ? std::int64_t(static_cast<const std::uint8_t*>(col.W)[m])
                                                       : std::int64_t(static_cast<const std::int32_t*>(col.W)[m]);
            if (w < 0 || w > col.w_max) throw py::value_error("W holds weights outside [0, w_max]");
        }
        a.keep.insert(a.keep.end(), {params, in_lines, plastic, W});
        p.columns.push_back(col);
    }
    check_tnn_wave_order(p);
    check_shape(data, "data", {-1, -1, p.n_in});
    a.data = get_ptr<std::uint8_t>(data, "data", false);
    a.S = data.shape(0);
    a.n_waves = data.shape(1);
    const std::int64_t total = a.S * a.n_waves * p.n_in;
    for (std::int64_t m = 0; m < total; ++m)  // the kernels trust times <= T (they index arrays of T + 1)
        if (a.data[m] > p.T) throw py::value_error("data holds spike times above T");
    return a;
}

}  // namespace sd_bind
