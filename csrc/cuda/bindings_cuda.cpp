// pybind11 bindings of the optional CUDA module sparsedream_fast._cuda, and of its CPU
// emulation sparsedream_fast._cuda_emu (the same sources built against csrc/cuda/emu, for
// tests on machines without a GPU; never picked by backend="cuda" on its own).
// Importing it never touches the GPU; device_count() is 0 (not an error) without a GPU or
// a driver. CUDA errors become RuntimeError.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include <pybind11/stl.h>

#include "bind_tnn_args.hpp"
#include "device.hpp"
#include "tnn_cuda.hpp"

namespace py = pybind11;

namespace {

/// Same arguments and checks as _core.tnn_run (bind_tnn_args.hpp), run on the current GPU.
py::tuple tnn_run(const py::dict& prog, const py::list& columns, const py::array& data, bool learn,
                  std::uint64_t wave0, std::uint32_t k0, std::uint32_t k1, const std::string& wdtype) {
    const sd_bind::TnnArgs a = sd_bind::parse_tnn_args(prog, columns, data, wdtype);
    for (const sd::TnnColumnDesc& col : a.prog.columns)  // the kernel holds these in 32-bit ints
        if (col.n > (1 << 24) || col.theta > 2147483647LL || col.w_max > (1 << 20))
            throw py::value_error("column: n <= 2^24, theta < 2^31 and w_max <= 2^20 on the GPU");
    const std::int64_t S = a.S, n_waves = a.n_waves, R = std::int64_t(a.prog.record.size());
    py::array_t<std::uint8_t> rec({S, n_waves, R});
    std::uint8_t* r = rec.mutable_data();
    std::uint64_t wave;
    {
        py::gil_scoped_release nogil;
        wave = sd::cuda::tnn_run(a.prog, a.data, S, n_waves, learn, wave0, k0, k1, r);
    }
    return py::make_tuple(rec, wave);
}

}  // namespace

namespace {

void define_module(py::module_& m) {
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

}  // namespace

#ifdef SD_CUDA_EMULATOR
#include "emu/emu_selftest.hpp"

PYBIND11_MODULE(_cuda_emu, m) {
    m.doc() = "CPU emulation of sparsedream_fast._cuda: the same kernels run as fibers (tests only, slow).";
    m.attr("emulated") = true;
    define_module(m);
    m.def("emu_selftest", &emu_selftest, "Kernels that exercise the emulator's primitives; what each gave.");
}
#else
PYBIND11_MODULE(_cuda, m) {
    m.doc() = "Optional CUDA module of sparsedream_fast (device queries; TNN kernels, rule A to come).";
    m.attr("emulated") = false;
    define_module(m);
}
#endif
