// pybind11 bindings of the TNN columns (rule D) in module _core: one call runs a whole
// presentation of a network program (sparsedream_fast/tnn/program.py) without the GIL.
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "bind_run.hpp"
#include "bind_tnn_args.hpp"
#include "sparsedream/tnn.hpp"

namespace py = pybind11;
using sd::i32;
using sd::i64;

namespace {

template <class Wt>
py::tuple run_typed(const sd_bind::TnnArgs& a, bool learn, std::uint64_t wave0, std::uint32_t k0, std::uint32_t k1,
                    int n_threads, const py::object& control) {
    const sd::TnnProgramDesc& d = a.prog;
    sd::TnnProgram<Wt> p;
    p.T = d.T;
    p.n_in = d.n_in;
    p.n_lines = d.n_lines;
    p.delay_src = d.delay_src;
    p.delay_dst = d.delay_dst;
    p.record = d.record;
    for (const sd::TnnColumnDesc& c : d.columns) {
        sd::TnnColumn<Wt> col;
        col.n = c.n, col.d = c.d, col.theta = c.theta, col.k = c.k, col.w_max = c.w_max, col.out0 = c.out0;
        col.stdp = sd::StdpParams{c.p[0], c.p[1], c.p[2], c.p[3], c.p[4]};
        col.in_lines = c.in_lines;
        col.plastic = c.plastic;
        col.W = static_cast<Wt*>(c.W);
        p.columns.push_back(col);
    }
    const i64 S = a.S, n_waves = a.n_waves, R = i64(p.record.size());
    const std::uint8_t* x = a.data;
    py::array_t<std::uint8_t> rec({S, n_waves, R});
    std::uint8_t* r = rec.mutable_data();
    std::uint64_t wave = wave0;
    sd_bind::PyPoll poll(control);
    sd::RunResult res;
    res.done = S;
    {
        py::gil_scoped_release nogil;
        if (learn) {
            sd::Poll pl = poll.poll();
            wave = sd::tnn_fit(p, x, S, n_waves, wave0, k0, k1, r, n_threads, pl, res);
        } else if (S < 2 || n_threads == 1) {
            sd::tnn_run(p, x, 0, S, n_waves, false, wave0, k0, k1, r);
        } else {
            // inference: sequences are independent (weights are only read)
            char tsan_fork = 0, tsan_join = 0;  // the region's edges for TSan (common.hpp)
            SD_TSAN_FORK(&tsan_fork);
#ifdef _OPENMP
#pragma omp parallel num_threads(n_threads > 0 ? n_threads : sd::omp_max_threads())
#endif
            {
                SD_TSAN_ENTER(&tsan_fork);
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 4)
#endif
                for (i64 s = 0; s < S; ++s) sd::tnn_run(p, x, s, s + 1, n_waves, false, wave0, k0, k1, r);
                SD_TSAN_LEAVE(&tsan_join);
            }
            SD_TSAN_JOIN(&tsan_join);
            (void)tsan_fork, (void)tsan_join;
        }
    }
    poll.finish(res);
    return py::make_tuple(rec, wave);
}

}  // namespace

void bind_tnn(py::module_& m) {
    m.def(
        "tnn_run",
        [](const py::dict& prog, const py::list& columns, const py::array& data, bool learn, std::uint64_t wave0,
           std::uint32_t k0, std::uint32_t k1, const std::string& wdtype, int n_threads, const py::object& control) {
            const sd_bind::TnnArgs a = sd_bind::parse_tnn_args(prog, columns, data, wdtype);
            if (a.prog.weight_bytes == 1) return run_typed<std::uint8_t>(a, learn, wave0, k0, k1, n_threads, control);
            return run_typed<std::int32_t>(a, learn, wave0, k0, k1, n_threads, control);
        },
        py::arg("prog"), py::arg("columns"), py::arg("data"), py::arg("learn"), py::arg("wave0"), py::arg("k0"),
        py::arg("k1"), py::arg("wdtype"), py::arg("n_threads") = 0, SD_CONTROL_PYARG,
        "Run a TNN network program over data (S, n_waves, n_in) uint8 spike times (n_threads: 0 "
        "automatic; training splits the columns of a level, inference the sequences); the columns' "
        "weights are updated in place when learning. control: None or int64 (3,) [stop request, "
        "sequences done, status] (bind_run.hpp): training stops after a sequence on a stop request or "
        "a signal handler's exception (raised on return). Returns (recorded (S, n_waves, R) uint8, wave).");
    m.def(
        "philox4x32_10",
        [](std::uint32_t c0, std::uint32_t c1, std::uint32_t c2, std::uint32_t c3, std::uint32_t k0, std::uint32_t k1) {
            const sd::U32x4 r = sd::philox4x32_10(c0, c1, c2, c3, k0, k1);
            return py::make_tuple(r.v[0], r.v[1], r.v[2], r.v[3]);
        },
        "Philox4x32-10 of one counter and key (for tests against the numpy twin).");
}
