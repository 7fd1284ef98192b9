// Work sharing inside one OpenMP parallel region that spans a whole fit.
//
// Thread 0 (the master) runs the step loop; the other threads serve the parallel phases.
// A phase over [0, n) is cut into one region per thread (the static split), each region
// into kChunksPerThread chunks. A thread takes the chunks of its own region first, then
// the unclaimed chunks of the others. The master waits for the chunks to be *done*, never
// for the other threads to arrive. So when a helper is late or descheduled (another
// process on its core), the master does the helper's share and the step goes on: there
// are no barriers that can stall a step for a scheduler time slice. The order of the
// arithmetic does not depend on which thread runs a chunk, so results do not depend on
// the thread count or the timing.
#pragma once

#include <atomic>
#include <thread>
#include <vector>

#include "common.hpp"

#if SD_X86
#include <immintrin.h>
#endif

namespace sd {

inline void cpu_relax() {
#if SD_X86
    _mm_pause();
#endif
}

class Team {
public:
    static constexpr i64 kChunksPerThread = 8;
    /// Spins (with pause) before a waiting thread starts yielding its core.
    static constexpr int kSpinsBeforeYield = 4000;

    explicit Team(int nt) : nt_(nt < 1 ? 1 : nt), claim_(nt_), done_(nt_) {}
    Team(const Team&) = delete;
    Team& operator=(const Team&) = delete;

    int threads() const { return nt_; }
    /// Number of chunk slots a phase uses (chunk indices passed to the function are below it).
    i64 chunk_slots() const { return nt_ == 1 ? 1 : nt_ * kChunksPerThread; }

    /// Master only: run f(tid, chunk, begin, end) over [0, n) with the helpers; returns when
    /// every chunk is done. Region bounds are multiples of `align`.
    template <class F>
    void parallel_for(i64 n, i64 align, F& f) {
        if (nt_ == 1) {
            f(0, i64(0), i64(0), n);
            return;
        }
        fn_ = [](void* ctx, int tid, i64 chunk, i64 b, i64 e) { (*static_cast<F*>(ctx))(tid, chunk, b, e); };
        ctx_ = &f;
        n_ = n;
        align_ = align < 1 ? 1 : align;
        for (int t = 0; t < nt_; ++t) claim_[t].v.store(0, std::memory_order_release);
        target_ += nt_ * kChunksPerThread;
        epoch_.v.fetch_add(1, std::memory_order_release);
        work(0);
        int spins = 0;
        while (true) {
            i64 done = 0;
            for (int t = 0; t < nt_; ++t) done += done_[t].v.load(std::memory_order_acquire);
            if (done == target_) break;
            relax(spins);
        }
    }

    /// Helpers (tid > 0): serve phases until the master calls stop().
    void serve(int tid) {
        i64 seen = 0;
        int spins = 0;
        while (true) {
            const i64 e = epoch_.v.load(std::memory_order_acquire);
            if (e != seen) {
                seen = e;
                work(tid);
                spins = 0;
                continue;
            }
            if (quit_.v.load(std::memory_order_acquire)) return;
            relax(spins);
        }
    }

    /// Master: release the helpers (they return from serve()).
    void stop() { quit_.v.store(1, std::memory_order_release); }

private:
    struct alignas(64) Slot {
        std::atomic<i64> v{0};
        char pad[64 - sizeof(std::atomic<i64>)];
    };

    static void relax(int& spins) {
        if (++spins < kSpinsBeforeYield) {
            cpu_relax();
        } else {
            std::this_thread::yield();
        }
    }

    i64 region_bound(int t) const {
        if (t >= nt_) return n_;
        const i64 b = n_ * t / nt_;
        return b - b % align_;
    }

    void work(int tid) {
        constexpr i64 g = kChunksPerThread;
        for (int k = 0; k < nt_; ++k) {
            const int t = (tid + k) % nt_;  // own region first, then the others'
            while (true) {
                const i64 c = claim_[t].v.fetch_add(1, std::memory_order_acq_rel);
                if (c >= g) break;
                // a successful claim belongs to the current phase: its parameters were
                // written before the claim counters were reset (release) and stay until
                // every chunk is done, so they are read only now
                const i64 lo = region_bound(t), hi = region_bound(t + 1);
                const i64 b = lo + (hi - lo) * c / g, e = lo + (hi - lo) * (c + 1) / g;
                fn_(ctx_, tid, t * g + c, b, e);
                done_[tid].v.fetch_add(1, std::memory_order_release);
            }
        }
    }

    int nt_;
    std::vector<Slot> claim_, done_;
    Slot epoch_, quit_;
    void (*fn_)(void*, int, i64, i64, i64) = nullptr;
    void* ctx_ = nullptr;
    i64 n_ = 0, align_ = 1;
    i64 target_ = 0;  // master only
};

}  // namespace sd
