// Rule A's blocked drive over nonzero inputs (docs/design.md, "The drive in fit").
//
// In a fit every frame is known in advance and a step changes only its active rows of W. So
// the drives of the next B frames are computed together, one pass over W per block: a tile of
// TW consecutive neurons at a time (one SIMD vector) is transposed into a per-thread buffer
// (input-major: the TW weights of one input contiguous; D x TW values, 25.6 KB at D = 400,
// so it stays in L1 while the block's frames use it), and each frame's drive is summed over
// that frame's nonzero inputs only (an index list per frame, built when the block starts),
// eight frames in lockstep (simd_tile.inc). A row updated
// since the block began is dirty: its drive is recomputed at the step that needs it, from the
// row itself, by the same chain (one fused multiply-add per nonzero input, inputs ascending,
// from 0). Both give the same bits, so a drive does not depend on B, on where blocks begin
// (chunked fits) or on the thread count.
//
// Skipping the zero inputs is exact while the weights are finite (w * 0 = 0). A tile holding a
// NaN or an infinity (found while it is transposed: W handed in from outside) is summed over
// every input instead, so that inf * 0 gives NaN as in the reference. Dirty rows are always
// finite, since a step that would write a value that is not finite writes nothing.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common.hpp"
#include "simd.hpp"

namespace sd {
namespace blockdrive {

// --------------------------------------------------------------------- dispatch
/// Neurons per tile at SIMD level `lvl` (one vector; 16 bytes at the scalar level).
template <class T>
inline i64 tile_width(int lvl) {
#if SD_HAVE_SIMD_DISPATCH
    if (lvl == simd::AVX512) return simd::avx512::tile_width<T>();
    if (lvl == simd::AVX2) return simd::avx2::tile_width<T>();
#endif
    (void)lvl;
    return simd::kTileVecs * i64(16 / sizeof(T));
}

/// Frames per group of the tile kernel at SIMD level `lvl` (at most simd::kTileGroupMax).
inline i64 tile_group(int lvl) {
#if SD_HAVE_SIMD_DISPATCH
    if (lvl == simd::AVX512) return simd::avx512::kTileGroup;
    if (lvl == simd::AVX2) return simd::avx2::kTileGroup;
#endif
    (void)lvl;
    return simd::kTileGroup;
}

template <class T>
inline bool tile_load_scalar(const T* W, i64 D, i64 n0, i64 rows, i64 TW, T* tile) {
    T bad = T(0);
    for (i64 j = 0; j < TW; ++j)
        for (i64 d = 0; d < D; ++d) {
            T x = T(0);
            if (j < rows) {
                x = W[(n0 + j) * D + d];
                bad += x - x;
            }
            tile[d * TW + j] = x;
        }
    for (i64 j = 0; j < TW; ++j) tile[D * TW + j] = T(0);
    return bad == T(0);
}

template <class T>
inline void tile_drive_scalar(const T* tile, i64 TW, const i32* gidx, const T* gval, const T* gval2, i64 len,
                              T* const* out, T* const* out2) {
    constexpr i64 G = simd::kTileGroup;
    for (i64 f = 0; f < G; ++f)
        for (i64 j = 0; j < TW; ++j) {
            T a = T(0), b = T(0);
            for (i64 t = 0; t < len; ++t) {
                const T c = tile[i64(gidx[t * G + f]) * TW + j];
                a = std::fma(c, gval[t * G + f], a);
                if (gval2) b = std::fma(c, gval2[t * G + f], b);
            }
            out[f][j] = a;
            if (gval2) out2[f][j] = b;
        }
}

/// Rows [n0, n0 + rows) of W into the tile (tile_width(lvl) lanes, D + 1 columns, the last
/// zero); false when a value read is not finite.
template <class T>
inline bool tile_load(int lvl, const T* W, i64 D, i64 n0, i64 rows, T* tile) {
#if SD_HAVE_SIMD_DISPATCH
    if (lvl == simd::AVX512) return simd::avx512::tile_load(W, D, n0, rows, tile);
    if (lvl == simd::AVX2) return simd::avx2::tile_load(W, D, n0, rows, tile);
#endif
    return tile_load_scalar(W, D, n0, rows, tile_width<T>(lvl), tile);
}

/// Drives of the tile's lanes for one group of tile_group(lvl) frames (simd_tile.inc).
template <class T>
inline void tile_drive(int lvl, const T* tile, const i32* gidx, const T* gval, const T* gval2, i64 len,
                       T* const* out, T* const* out2) {
#if SD_HAVE_SIMD_DISPATCH
    if (lvl == simd::AVX512) {
        if (gval2) simd::avx512::tile_drive<T, true>(tile, gidx, gval, gval2, len, out, out2);
        else simd::avx512::tile_drive<T, false>(tile, gidx, gval, gval2, len, out, out2);
        return;
    }
    if (lvl == simd::AVX2) {
        if (gval2) simd::avx2::tile_drive<T, true>(tile, gidx, gval, gval2, len, out, out2);
        else simd::avx2::tile_drive<T, false>(tile, gidx, gval, gval2, len, out, out2);
        return;
    }
#endif
    tile_drive_scalar(tile, tile_width<T>(lvl), gidx, gval, gval2, len, out, out2);
}

/// p[rows[r]] = the chain of row rows[r] of W over (idx, val); p2 likewise over val2 (when
/// not null). Eight rows at a time, so that eight chains are in flight.
template <class T>
SD_INLINE void rows_drive_impl(const T* W, i64 D, const i64* rows, i64 nr, const i32* idx, const T* val,
                               const T* val2, i64 nnz, T* p, T* p2) {
    i64 r = 0;
    for (; r + 8 <= nr; r += 8) {
        const T* w[8];
        T a[8], b[8];
        for (int i = 0; i < 8; ++i) {
            w[i] = W + rows[r + i] * D;
            a[i] = b[i] = T(0);
        }
        for (i64 t = 0; t < nnz; ++t) {
            const i64 d = idx[t];
            const T x = val[t];
            for (int i = 0; i < 8; ++i) a[i] = std::fma(w[i][d], x, a[i]);
        }
        for (int i = 0; i < 8; ++i) p[rows[r + i]] = a[i];
        if (val2) {
            for (i64 t = 0; t < nnz; ++t) {
                const i64 d = idx[t];
                const T x = val2[t];
                for (int i = 0; i < 8; ++i) b[i] = std::fma(w[i][d], x, b[i]);
            }
            for (int i = 0; i < 8; ++i) p2[rows[r + i]] = b[i];
        }
    }
    for (; r < nr; ++r) {
        const T* w = W + rows[r] * D;
        T a = T(0), b = T(0);
        for (i64 t = 0; t < nnz; ++t) a = std::fma(w[idx[t]], val[t], a);
        p[rows[r]] = a;
        if (val2) {
            for (i64 t = 0; t < nnz; ++t) b = std::fma(w[idx[t]], val2[t], b);
            p2[rows[r]] = b;
        }
    }
}
SD_MULTIVERSION(rows_drive, rows_drive_impl)

// ------------------------------------------------------------------ block size
/// Largest block: the prototype's best B was 32 at 400 neurons, 64-128 at 6,400 and 128-256
/// at 40,000 (D = 400, k = 5, one thread, docs/design.md); beyond 256 the dirty rows cost more
/// than the pass over W they save.
constexpr i64 kMaxBlock = 256;
constexpr i64 kMinBlock = 8;
/// The block's drives may take this much memory, or a quarter of W's size if that is more.
constexpr i64 kBlockBytes = i64(64) << 20;

/// Frames per block for N neurons, D inputs and about `rows_per_step` rows updated per step:
/// the pass over W costs about N D / B per step, the dirty rows about rows_per_step * B / 2 *
/// nnz; their sum is least near B = sqrt(2 N D / (rows_per_step nnz)), taken with nnz = D / 5
/// (the tapestry's density) and rounded to a power of two in [kMinBlock, kMaxBlock],
/// then capped by memory and by the steps left.
inline i64 choose_block(i64 N, i64 D, i64 rows_per_step, i64 item, bool two, i64 steps) {
    const double best = std::sqrt(10.0 * double(N) / double(rows_per_step < 1 ? 1 : rows_per_step));
    i64 B = kMinBlock;  // the power of two nearest to `best` (in log scale)
    while (B * 2 <= kMaxBlock && double(B) * 1.41421356 < best) B *= 2;
    const i64 wbytes = N * D * item;
    const i64 budget = std::max(kBlockBytes, wbytes / 4);
    const i64 per_frame = N * item * (two ? 2 : 1);
    while (B > 1 && B * per_frame > budget) B /= 2;
    if (B > steps) B = steps;
    return B < 1 ? 1 : B;
}

// ---------------------------------------------------------------- the block
/// The drives of one block of frames, and what computing them needs.
template <class T>
class Block {
public:
    static constexpr i64 GM = simd::kTileGroupMax;

    /// N neurons, D inputs, up to B frames per block; `two`: also W (v*v) (weighted average);
    /// `threads`: scratch for that many; `lvl`: the SIMD level (fixes the tile width).
    void init(i64 N, i64 D, i64 B, bool two, int threads, int lvl) {
        N_ = N;
        D_ = D;
        two_ = two;
        lvl_ = lvl;
        TW_ = tile_width<T>(lvl);
        G_ = tile_group(lvl);
        const i64 G = G_;
        ntiles_ = (N + TW_ - 1) / TW_;
        P_.assign(size_t(B) * N, T(0));
        if (two) P2_.assign(size_t(B) * N, T(0));
        // each thread's tile starts on a cache line (and on its own lines): a column of the
        // tile is then one aligned vector, never a load split over two lines
        constexpr i64 line = 64 / i64(sizeof(T));
        scratch_stride_ = ((D + 1) * TW_ + 2 * G * TW_ + D * G * (two ? 2 : 1) + line - 1) / line * line;
        scratch_.assign(size_t(threads) * scratch_stride_ + line, T(0));
        dense_idx_.resize(size_t(D) * G);
        for (i64 t = 0; t < D; ++t)
            for (i64 f = 0; f < G; ++f) dense_idx_[t * G + f] = i32(t);
        off_.assign(B + 1, 0);
        idx_.reserve(size_t(B) * D);
        val_.reserve(size_t(B) * D);
        if (two) val2_.reserve(size_t(B) * D);
        const i64 ng = (B + G - 1) / G;
        gframe_.assign(size_t(ng) * G, -1);
        glen_.assign(ng, 0);
        goff_.assign(ng + 1, 0);
        gidx_.reserve(size_t(ng) * G * D);
        gval_.reserve(size_t(ng) * G * D);
        if (two) gval2_.reserve(size_t(ng) * G * D);
        dval2_.assign(two ? size_t(B) * D : 0, T(0));
        frames_.assign(B, nullptr);
        by_nnz_.assign(B, 0);
    }

    i64 tiles() const { return ntiles_; }
    /// Bytes held (drives, scratch, index lists).
    i64 bytes() const {
        return i64(P_.capacity() + P2_.capacity() + scratch_.capacity() + val_.capacity() + val2_.capacity() +
                   gval_.capacity() + gval2_.capacity() + dval2_.capacity()) * i64(sizeof(T)) +
               i64(idx_.capacity() + gidx_.capacity() + dense_idx_.capacity()) * 4;
    }

    /// The frames of the next block (nb <= B): their nonzero inputs ascending, and the groups
    /// of G frames the tile kernel runs together (frames by decreasing count of nonzeros,
    /// so that little padding is needed).
    void set_frames(const T* const* frames, i64 nb) {
        const i64 G = G_;
        nb_ = nb;
        idx_.clear();
        val_.clear();
        val2_.clear();
        for (i64 b = 0; b < nb; ++b) {
            const T* v = frames[b];
            frames_[b] = v;
            off_[b] = i64(idx_.size());
            for (i64 d = 0; d < D_; ++d) {
                const T x = v[d];
                if (x != T(0)) {  // NaN is kept
                    idx_.push_back(i32(d));
                    val_.push_back(x);
                    if (two_) val2_.push_back(x * x);
                }
            }
            if (two_) {
                T* vv = dval2_.data() + b * D_;
                for (i64 d = 0; d < D_; ++d) vv[d] = v[d] * v[d];
            }
        }
        off_[nb] = i64(idx_.size());
        for (i64 b = 0; b < nb; ++b) by_nnz_[b] = b;
        std::stable_sort(by_nnz_.begin(), by_nnz_.begin() + nb,
                         [this](i64 x, i64 y) { return off_[x + 1] - off_[x] > off_[y + 1] - off_[y]; });
        ng_ = (nb + G - 1) / G;
        gidx_.clear();
        gval_.clear();
        gval2_.clear();
        for (i64 g = 0; g < ng_; ++g) {
            i64 len = 0;
            for (i64 f = 0; f < G; ++f) {
                const i64 j = g * G + f;
                const i64 b = j < nb ? by_nnz_[j] : -1;
                gframe_[g * G + f] = b;
                if (b >= 0) len = std::max(len, off_[b + 1] - off_[b]);
            }
            glen_[g] = len;
            goff_[g] = i64(gidx_.size()) / G;
            for (i64 t = 0; t < len; ++t)
                for (i64 f = 0; f < G; ++f) {
                    const i64 b = gframe_[g * G + f];
                    const bool real = b >= 0 && t < off_[b + 1] - off_[b];
                    gidx_.push_back(real ? idx_[off_[b] + t] : i32(D_));  // the tile's zero column
                    gval_.push_back(real ? val_[off_[b] + t] : T(0));
                    if (two_) gval2_.push_back(real ? val2_[off_[b] + t] : T(0));
                }
        }
    }

    /// The drives of tiles [t0, t1) for every frame of the block (thread `tid`'s scratch).
    void product(const T* W, i64 t0, i64 t1, int tid) {
        const i64 G = G_;
        T* tile = aligned_scratch() + size_t(tid) * scratch_stride_;
        T* part = tile + (D_ + 1) * TW_;  // G x TW drives (and G x TW of W (v*v)) of a partial tile
        T* dval = part + 2 * G * TW_;      // a group's values over every input (non-finite tile)
        T* out[GM];
        T* out2[GM];
        for (i64 t = t0; t < t1; ++t) {
            const i64 n0 = t * TW_, rows = std::min(TW_, N_ - n0);
            const bool finite = tile_load(lvl_, W, D_, n0, rows, tile);
            for (i64 g = 0; g < ng_; ++g) {
                for (i64 f = 0; f < G; ++f) {
                    const i64 b = gframe_[g * G + f];
                    const bool direct = b >= 0 && rows == TW_;
                    out[f] = direct ? P_.data() + b * N_ + n0 : part + f * TW_;
                    out2[f] = !two_ ? nullptr : direct ? P2_.data() + b * N_ + n0 : part + (G + f) * TW_;
                }
                if (finite) {
                    const size_t o = size_t(goff_[g]) * G;
                    tile_drive(lvl_, tile, gidx_.data() + o, gval_.data() + o, two_ ? gval2_.data() + o : nullptr,
                               glen_[g], out, out2);
                } else {  // inf * 0 must give NaN: every input of every frame of the group
                    for (i64 d = 0; d < D_; ++d)
                        for (i64 f = 0; f < G; ++f) {
                            const i64 b = gframe_[g * G + f];
                            dval[d * G + f] = b >= 0 ? frames_[b][d] : T(0);
                            if (two_) dval[D_ * G + d * G + f] = b >= 0 ? dval2_[b * D_ + d] : T(0);
                        }
                    tile_drive(lvl_, tile, dense_idx_.data(), dval, two_ ? dval + D_ * G : nullptr, D_, out, out2);
                }
                if (rows < TW_)
                    for (i64 f = 0; f < G; ++f) {
                        const i64 b = gframe_[g * G + f];
                        if (b < 0) continue;
                        std::copy(part + f * TW_, part + f * TW_ + rows, P_.data() + b * N_ + n0);
                        if (two_) std::copy(part + (G + f) * TW_, part + (G + f) * TW_ + rows, P2_.data() + b * N_ + n0);
                    }
            }
        }
    }

    T* p(i64 b) { return P_.data() + b * N_; }
    T* p2(i64 b) { return two_ ? P2_.data() + b * N_ : nullptr; }

    /// The drives of frame b of the rows rows[0..nr) of W into p(b) (and p2(b)), over the
    /// frame's nonzero inputs. The rows must be finite: they are rows a step updated or a
    /// clip changed, and a step writes only finite values (rule_a.hpp, run_control.hpp).
    void recompute(const T* W, const i64* rows, i64 nr, i64 b) {
        rows_drive(W, D_, rows, nr, idx_.data() + off_[b], val_.data() + off_[b],
                   two_ ? val2_.data() + off_[b] : nullptr, off_[b + 1] - off_[b], p(b), p2(b));
    }

private:
    T* aligned_scratch() {
        const auto a = reinterpret_cast<std::uintptr_t>(scratch_.data());
        return scratch_.data() + ((64 - a % 64) % 64) / sizeof(T);
    }

    i64 N_ = 0, D_ = 0, TW_ = 0, G_ = 1, ntiles_ = 0, nb_ = 0, ng_ = 0, scratch_stride_ = 0;
    bool two_ = false;
    int lvl_ = 0;
    std::vector<T> P_, P2_, scratch_, val_, val2_, gval_, gval2_, dval2_;
    std::vector<i32> idx_, gidx_, dense_idx_;
    std::vector<i64> off_, gframe_, glen_, goff_, by_nnz_;
    std::vector<const T*> frames_;
};

}  // namespace blockdrive
}  // namespace sd
