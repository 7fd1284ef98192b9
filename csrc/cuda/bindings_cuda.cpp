// pybind11 bindings of the optional CUDA module sparsedream_fast._cuda.
// Importing it never touches the GPU; device_count() is 0 (not an error) without a GPU or
// a driver. CUDA errors become RuntimeError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "bind_common.hpp"
#include "device.hpp"
#include "tnn_cuda.hpp"

namespace py = pybind11;
using sd_bind::check_shape;
using sd_bind::get_ptr;
using sd_bind::item;

namespace {

std::vector<std::int32_t> lines_vector(const py::array& a, const char* name, std::int64_t n_lines) {
    check_shape(a, name, {-1});
    const std::int32_t* p = get_ptr<std::int32_t>(a, name, false);
    std::vector<std::int32_t> v(p, p + a.shape(0));
    for (std::int32_t x : v)
        if (x < 0 || x >= n_lines) throw py::value_error(std::string(name) + " holds a line outside [0, n_lines)");
    return v;
}

/// Every line is written by at most one layer per wave (inputs, delay stages, columns), and a
/// column reads only lines written before it in the wave: what the Python
/// builder guarantees (tnn/program.py), checked because the kernels' way of keeping the
/// previous wave relies on it.
template <class Col>
void check_wave_order(std::int64_t n_in, std::int64_t n_lines, const std::vector<std::int32_t>& delay_dst, const std::vector<Col>& cols) {
    std::vector<std::int64_t> owner(size_t(n_lines), -2);  // -2 none, -1 input or delay, c column c
    for (std::int64_t m = 0; m < n_in; ++m) owner[size_t(m)] = -1;
    for (std::int32_t m : delay_dst) {
        if (owner[size_t(m)] != -2) throw py::value_error("delay_dst: a line written twice in a wave");
        owner[size_t(m)] = -1;
    }
    for (size_t c = 0; c < cols.size(); ++c)
        for (std::int64_t j = cols[c].out0; j < cols[c].out0 + cols[c].n; ++j) {
            if (owner[size_t(j)] != -2) throw py::value_error("column lines overlap other lines");
            owner[size_t(j)] = std::int64_t(c);
        }
    for (std::int64_t v : owner)
        if (v == -2) throw py::value_error("a line is written by no input, delay or column");
    for (size_t c = 0; c < cols.size(); ++c)
        for (std::int64_t i = 0; i < cols[c].d; ++i)
            if (owner[size_t(cols[c].in_lines[i])] >= std::int64_t(c))
                throw py::value_error("a column reads its own lines or a later column's (feedback needs a delay)");
}

/// Same arguments and checks as _core.tnn_run (csrc/bind_tnn.cpp), run on the current GPU.
py::tuple tnn_run(const py::dict& prog, const py::list& columns, const py::array& data, bool learn,
                  std::uint64_t wave0, std::uint32_t k0, std::uint32_t k1, const std::string& wdtype) {
    sd::cuda::TnnHostProgram p;
    if (wdtype != "int32" && wdtype != "uint8") throw py::value_error("weight dtype must be 'int32' or 'uint8'");
    p.weight_bytes = wdtype == "uint8" ? 1 : 4;
    p.T = item<int>(prog, "T");
    if (p.T < 1 || p.T > 255) throw py::value_error("T must be in [1, 255]");
    p.n_in = item<std::int64_t>(prog, "n_in");
    p.n_lines = item<std::int64_t>(prog, "n_lines");
    if (p.n_in < 1 || p.n_lines < p.n_in) throw py::value_error("inconsistent n_in / n_lines");
    p.delay_src = lines_vector(item<py::array>(prog, "delay_src"), "delay_src", p.n_lines);
    p.delay_dst = lines_vector(item<py::array>(prog, "delay_dst"), "delay_dst", p.n_lines);
    if (p.delay_src.size() != p.delay_dst.size()) throw py::value_error("delay_src and delay_dst differ in length");
    p.record = lines_vector(item<py::array>(prog, "record"), "record", p.n_lines);
    std::vector<py::array> keep;
    for (auto h : columns) {
        py::dict c = h.cast<py::dict>();
        sd::cuda::TnnHostColumn col;
        col.n = item<std::int64_t>(c, "n");
        col.theta = item<std::int64_t>(c, "theta");
        col.k = item<std::int64_t>(c, "k");
        col.w_max = item<std::int64_t>(c, "w_max");
        col.out0 = item<std::int64_t>(c, "out0");
        // the kernel holds these in 32-bit ints (the Python API caps w_max at 2^20)
        if (col.n > (1 << 24) || col.theta > 2147483647LL || col.w_max > (1 << 20))
            throw py::value_error("column: n <= 2^24, theta < 2^31 and w_max <= 2^20 on the GPU");
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
        for (std::int64_t m = 0; m < col.n * col.d; ++m) {  // as _core.tnn_run: 0 <= w <= w_max
            const std::int64_t w = p.weight_bytes == 1 ? std::int64_t(static_cast<const std::uint8_t*>(col.W)[m])
                                                       : std::int64_t(static_cast<const std::int32_t*>(col.W)[m]);
            if (w < 0 || w > col.w_max) throw py::value_error("W holds weights outside [0, w_max]");
        }
        keep.insert(keep.end(), {params, in_lines, plastic, W});
        p.columns.push_back(col);
    }
    check_wave_order(p.n_in, p.n_lines, p.delay_dst, p.columns);
    check_shape(data, "data", {-1, -1, p.n_in});
    const std::uint8_t* x = get_ptr<std::uint8_t>(data, "data", false);
    const std::int64_t S = data.shape(0), n_waves = data.shape(1), total = S * n_waves * p.n_in;
    for (std::int64_t m = 0; m < total; ++m)
        if (x[m] > p.T) throw py::value_error("data holds spike times above T");
    const std::int64_t R = std::int64_t(p.record.size());
    py::array_t<std::uint8_t> rec({S, n_waves, R});
    std::uint8_t* r = rec.mutable_data();
    std::uint64_t wave;
    {
        py::gil_scoped_release nogil;
        wave = sd::cuda::tnn_run(p, x, S, n_waves, learn, wave0, k0, k1, r);
    }
    return py::make_tuple(rec, wave);
}

}  // namespace

PYBIND11_MODULE(_cuda, m) {
    m.doc() = "Optional CUDA module of sparsedream_fast (device queries; TNN kernels, rule A to come).";
    m.def("device_count", &sd::cuda::device_count,
          "Number of visible CUDA GPUs (0 when there is none or no driver; never raises for that).");
    m.def("device_name", &sd::cuda::device_name, py::arg("i") = 0, "Name of GPU i.");
    m.def(
        "device_capability",
        [](int i) {
            int major = 0, minor = 0;
            sd::cuda::device_capability(i, &major, &minor);
            return py::make_tuple(major, minor);
        },
        py::arg("i") = 0, "Compute capability (major, minor) of GPU i.");
    m.def("runtime_version", &sd::cuda::runtime_version,
          "CUDA runtime version the module was built with (1000 * major + 10 * minor).");
    m.def("driver_version", &sd::cuda::driver_version, "CUDA version of the installed driver (0: none).");
    m.def("self_test", &sd::cuda::self_test, py::arg("i") = 0,
          "Run a tiny kernel on GPU i; True when its result is right.");
    m.def("tnn_run", &tnn_run, py::arg("prog"), py::arg("columns"), py::arg("data"), py::arg("learn"),
          py::arg("wave0"), py::arg("k0"), py::arg("k1"), py::arg("wdtype"),
          "Rule D on the GPU: the same contract as _core.tnn_run (weights updated in place when learning).");
}
