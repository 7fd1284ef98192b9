// The stop check the bindings give a native training loop (sparsedream/run_control.hpp), and
// the report of where the loop stopped. Shared by every binding file of _core and the CUDA
// module.
//
// The poll takes the GIL, lets Python run its signal handlers (PyErr_CheckSignals) and reads
// the stop flag of the caller's control array. The library's fits defer SIGINT while they run
// (sparsedream_fast/_runtime.py): the handler only sets that flag, and the loop stops at the
// next step boundary. Without the deferral a handler may raise (KeyboardInterrupt): the
// exception is kept, the loop stops at the next step boundary, and it is raised when the
// call returns, the control array written first.
//
// Control array (int64, 3 entries, or None): [0] stop request (nonzero: stop; written by
// Python), [1] steps done, [2] RunStatus (both written here when the loop has returned).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>

#include "bind_common.hpp"
#include "sparsedream/run_control.hpp"

namespace sd_bind {

class PyPoll {
public:
    /// `control`: None or a writable C-contiguous int64 array of 3 entries (checked here,
    /// before any kernel runs).
    explicit PyPoll(const py::object& control) {
        if (control.is_none()) return;
        arr_ = control.cast<py::array>();
        check_shape(arr_, "control", {3});
        flag_ = get_ptr<std::int64_t>(arr_, "control", true);
    }
    PyPoll(const PyPoll&) = delete;
    PyPoll& operator=(const PyPoll&) = delete;

    /// The poll for the loop (call the loop without the GIL).
    sd::Poll poll() { return sd::Poll(&PyPoll::check, this); }

    /// With the GIL, after the loop: write the result into the control array, then raise the
    /// exception a signal handler raised during the loop, if any. Returns r.
    sd::RunResult finish(const sd::RunResult& r) {
        if (flag_) {
            flag_[1] = r.done;
            flag_[2] = r.status;
        }
        if (error_) {
            error_->restore();
            error_.reset();
            throw py::error_already_set();
        }
        return r;
    }

private:
    static bool check(void* self) {
        PyPoll* p = static_cast<PyPoll*>(self);
        py::gil_scoped_acquire gil;
        if (PyErr_CheckSignals() != 0) {
            p->error_ = std::make_unique<py::error_already_set>();
            return true;
        }
        return p->flag_ != nullptr && static_cast<volatile std::int64_t*>(p->flag_)[0] != 0;
    }

    py::array arr_;
    std::int64_t* flag_ = nullptr;
    std::unique_ptr<py::error_already_set> error_;
};

/// The control argument every training entry point takes (None or the int64 array).
#define SD_CONTROL_PYARG py::arg("control") = py::none()

}  // namespace sd_bind
