// Work sharing inside one OpenMP parallel region that spans a whole fit.
//
// Thread 0 (the master) runs the step loop; the other threads serve its parallel phases.
// A phase over [0, n) is cut into one region per thread (the static split), each region
// into a few chunks. A thread takes the chunks of its own region first, then the unclaimed
// chunks of the others. The master waits for the chunks to be *done*, never for the other
// threads to arrive: when a helper is late or descheduled (another process on its core),
// the master does the helper's share and the step goes on. There is no barrier that can
// stall a step for a scheduler time slice. The arithmetic of a chunk does not depend on
// the thread that runs it, so results do not depend on the thread count or the timing.
//
// Claims: each region has one 64-bit word (phase:40 | limit:12 | count:12) changed only
// by compare-and-swap. The first claim of a phase writes the phase and its chunk limit;
// a claim succeeds only for the current phase and below its limit, so a late thread can
// never take (or re-run) a chunk of another phase.
#pragma once

#include <atomic>
#include <exception>
#include <cstdint>
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
    /// At most this many chunks per thread and phase (chunk slots are sized for it).
    static constexpr i64 kChunksPerThread = 8;
    /// Spins (with pause) before a waiting thread starts yielding its core.
    static constexpr int kSpinsBeforeYield = 4000;

    explicit Team(int nt) : nt_(nt < 1 ? 1 : nt), claim_(nt_), done_(nt_) {}
    Team(const Team&) = delete;
    Team& operator=(const Team&) = delete;

    int threads() const { return nt_; }
    /// Number of chunk slots (chunk indices passed to the functions are below it).
    i64 chunk_slots() const { return nt_ == 1 ? 1 : nt_ * kChunksPerThread; }

    /// Master only: run f(tid, chunk, begin, end) over [0, n) with the helpers; returns when
    /// every chunk is done. Region bounds are multiples of `align`; each region is cut into
    /// `chunks` (1..kChunksPerThread) chunks: more chunks balance better when a helper is
    /// late, fewer cost less synchronization (each claim moves a cache line between cores).
    template <class F>
    void parallel_for(i64 n, i64 align, i64 chunks, F& f) {
        if (nt_ == 1) {
            f(0, i64(0), i64(0), n);
            return;
        }
        fn_.store([](void* ctx, int tid, i64 chunk, i64 b, i64 e) { (*static_cast<F*>(ctx))(tid, chunk, b, e); },
                  std::memory_order_relaxed);
        ctx_.store(&f, std::memory_order_relaxed);
        n_.store(n, std::memory_order_relaxed);
        align_.store(align < 1 ? 1 : align, std::memory_order_relaxed);
        const i64 g = chunks < 1 ? 1 : (chunks > kChunksPerThread ? kChunksPerThread : chunks);
        limit_.store(g, std::memory_order_relaxed);
        target_ += nt_ * g;
        const std::uint64_t e = epoch_.v.fetch_add(1, std::memory_order_release) + 1;  // publish
        work(0, e);
        int spins = 0;
        while (true) {
            i64 done = 0;
            for (int t = 0; t < nt_; ++t) done += done_[t].v.load(std::memory_order_acquire);
            if (done == target_) break;
            relax(spins);
        }
    }

    /// Run master() on the calling thread as the team's master while the other threads of one
    /// OpenMP region serve its phases (one thread, or no OpenMP: master() alone, its phases
    /// run inline). An exception thrown by master() is rethrown here, after the helpers are
    /// released.
    template <class F>
    void run(F&& master) {
        if (nt_ == 1) {
            master();
            return;
        }
        quit_.v.store(0, std::memory_order_relaxed);
        std::exception_ptr error;
#ifdef _OPENMP
        SD_TSAN_FORK(&tsan_fork_);
#pragma omp parallel num_threads(nt_)
        {
            SD_TSAN_ENTER(&tsan_fork_);
            const int tid = omp_get_thread_num();
            if (tid == 0) {
                try {
                    master();
                } catch (...) {
                    error = std::current_exception();
                }
                stop();
            } else {
                serve(tid);
            }
            SD_TSAN_LEAVE(&tsan_join_);
        }
        SD_TSAN_JOIN(&tsan_join_);
#else
        try {  // a late or absent helper's chunks are the master's: it runs them all
            master();
        } catch (...) {
            error = std::current_exception();
        }
#endif
        if (error) std::rethrow_exception(error);
    }

    /// Helpers (tid > 0): serve phases until the master calls stop().
    void serve(int tid) {
        std::uint64_t seen = 0;
        int spins = 0;
        while (true) {
            const std::uint64_t e = epoch_.v.load(std::memory_order_acquire);
            if (e != seen) {
                seen = e;
                work(tid, e);
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
    template <class V>
    struct alignas(64) Slot {
        std::atomic<V> v{0};
    };

    static void relax(int& spins) {
        if (++spins < kSpinsBeforeYield) {
            cpu_relax();
        } else {
            std::this_thread::yield();
        }
    }

    /// Claim the next chunk of region t in phase e; false when there is none (or the phase
    /// is over).
    bool claim(int t, std::uint64_t e, i64& chunk) {
        std::atomic<std::uint64_t>& w = claim_[t].v;
        std::uint64_t cur = w.load(std::memory_order_acquire);
        while (true) {
            const std::uint64_t ep = cur >> 24;
            std::uint64_t nxt;
            if (ep < e) {  // first claim of this phase in region t: chunk 0
                const std::uint64_t lim = std::uint64_t(limit_.load(std::memory_order_relaxed));
                nxt = (e << 24) | (lim << 12) | 1u;
                chunk = 0;
            } else if (ep == e) {
                const std::uint64_t lim = (cur >> 12) & 0xfffu, cnt = cur & 0xfffu;
                if (cnt >= lim) return false;
                nxt = cur + 1;
                chunk = i64(cnt);
            } else {
                return false;  // a later phase: this thread is late
            }
            if (w.compare_exchange_weak(cur, nxt, std::memory_order_acq_rel, std::memory_order_acquire))
                return true;
        }
    }

    i64 region_bound(int t, i64 n, i64 align) const {
        if (t >= nt_) return n;
        const i64 b = n * t / nt_;
        return b - b % align;
    }

    void work(int tid, std::uint64_t e) {
        for (int k = 0; k < nt_; ++k) {
            const int t = (tid + k) % nt_;  // own region first, then the others'
            i64 c;
            while (claim(t, e, c)) {
                // a successful claim means phase e is not over: its parameters (written
                // before the phase was published) are still in place
                const i64 n = n_.load(std::memory_order_relaxed), align = align_.load(std::memory_order_relaxed);
                const i64 g = limit_.load(std::memory_order_relaxed);
                const i64 lo = region_bound(t, n, align), hi = region_bound(t + 1, n, align);
                const i64 b = lo + (hi - lo) * c / g, end = lo + (hi - lo) * (c + 1) / g;
                fn_.load(std::memory_order_relaxed)(ctx_.load(std::memory_order_relaxed), tid,
                                                    t * kChunksPerThread + c, b, end);
                done_[tid].v.fetch_add(1, std::memory_order_release);
            }
        }
    }

    int nt_;
    std::vector<Slot<std::uint64_t>> claim_;
    std::vector<Slot<i64>> done_;
    Slot<std::uint64_t> epoch_;
    Slot<int> quit_;
    std::atomic<void (*)(void*, int, i64, i64, i64)> fn_{nullptr};
    std::atomic<void*> ctx_{nullptr};
    std::atomic<i64> n_{0}, align_{1}, limit_{1};
    i64 target_ = 0;  // master only
    char tsan_fork_ = 0, tsan_join_ = 0;  // addresses of the region's edges for TSan (common.hpp)
};

}  // namespace sd
