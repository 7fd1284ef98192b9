// Stopping a long native loop at a step boundary, and the outcome of a run. Every native
// training loop (rules A-D on the CPU, the host loops of the CUDA kernels) asks
// `poll.stop()` after each step, batch or wave. That is a counter decrement; every so many
// calls the clock is read, and about every kPollSeconds the poll function of the binding
// runs (it takes the GIL and lets Python run its signal handlers, bind_run.hpp). So a
// Ctrl-C is noticed within a few tens of milliseconds of work plus one step, at a cost
// per step of a few nanoseconds. Header-only, no Python types.
#pragma once

#include <chrono>

#include "common.hpp"

namespace sd {

/// How a run ended: every step done, stopped by its poll, or stopped before a step whose
/// update is not finite (that step wrote nothing).
enum RunStatus : int { RUN_DONE = 0, RUN_STOPPED = 1, RUN_DIVERGED = 2 };

/// Steps (batches, waves) completed by a run, and how it ended.
struct RunResult {
    i64 done = 0;
    int status = RUN_DONE;
};

/// The stop check of a loop. Default-constructed: never stops (and costs one compare).
class Poll {
public:
    using Fn = bool (*)(void* ctx);  ///< true: stop now
    /// Seconds of work between two calls of the poll function.
    static constexpr double kPollSeconds = 0.02;
    /// The clock is read about this often (the stride of calls between reads adapts).
    static constexpr double kClockSeconds = 0.001;

    Poll() = default;
    Poll(Fn fn, void* ctx) : fn_(fn), ctx_(ctx), last_read_(Clock::now()), last_poll_(last_read_) {}

    /// Ask after a step whether the loop must stop before the next one (once true, stays true).
    bool stop() {
        if (fn_ == nullptr) return false;
        if (--countdown_ > 0) return stopped_;
        return slow();
    }

private:
    using Clock = std::chrono::steady_clock;

    bool slow() {
        const Clock::time_point t = Clock::now();
        const double since_read = std::chrono::duration<double>(t - last_read_).count();
        if (since_read < kClockSeconds / 2 && stride_ < (i64(1) << 24)) {
            stride_ *= 2;
        } else if (since_read > 2 * kClockSeconds && stride_ > 1) {
            stride_ /= 2;
        }
        countdown_ = stride_;
        last_read_ = t;
        if (!stopped_ && std::chrono::duration<double>(t - last_poll_).count() >= kPollSeconds) {
            last_poll_ = t;
            stopped_ = fn_(ctx_);
            last_read_ = Clock::now();  // the poll may have waited for the GIL
        }
        return stopped_;
    }

    Fn fn_ = nullptr;
    void* ctx_ = nullptr;
    i64 stride_ = 1, countdown_ = 1;
    bool stopped_ = false;
    Clock::time_point last_read_{}, last_poll_{};
};

}  // namespace sd
