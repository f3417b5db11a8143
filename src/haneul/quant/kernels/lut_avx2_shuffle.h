// AVX2 byte-shuffle paths: integer tables, `_mm256_shuffle_epi8` lookups of 32 output rows at once.
//
// Algorithm. For input row b, every run j of 4 inputs has the 16 signed sums T_j[k] = Σ_t ±x[4j + t]
// (lut_avx2.h builds them in fp32). The runs are cut into segments (a group, or at most kSegCols
// code columns of it); a segment gets one scale s = M / L with M = max_j Σ_t |x[4j + t]| (the largest
// |T_j[k]| in the segment) and L = 2^(8·B − 1) − 1, and its tables are rounded to B-byte integers
// q_j[k] = round(T_j[k] / s), |q| ≤ L, stored as B byte planes of 16 bytes (low bytes unsigned, the
// top byte biased by +128 so every plane is unsigned). A 16-byte plane fits one 128-bit lane, so one
// shuffle (the plane broadcast to both lanes) looks up a byte of 32 rows' entries. Per byte plane,
// the bytes at even / odd positions are summed in uint16 lanes (at most kSegCols · 2 · 255 < 65536);
// at each segment end they are widened to int32, recombined (Σ top − 128 · runs) · 2^(8(B−1)) +
// Σ_lower · 2^(8β) (|·| < 2^31 for 128 runs at B = 3), converted to fp32 and added times s · α.
//
//   B = 3 ("avx2", exact): L = 2^23 − 1. Rounding moves an entry by at most s/2 = M / (2L), about
//       6e-8 · M, below fp32's own rounding of the sums: results match dequantise-then-matmul to
//       about 1e-7 relative, as the fp32-table paths do. 3 shuffles per 32 rows, run and bit-plane.
//   B = 1 ("avx2-int8", opt-in fast mode, not exact): L = 127, 1 shuffle per 32 rows, run and plane.
//
// Error bound (both): for output row o,
//   |y_o − ŷ_o| ≤ Σ_segments (runs in segment) · M_segment / (2L) · Σ_i |α[o, g(segment), i]|
// plus fp32 rounding. Measured relative errors on Gaussian inputs: about 2e-7 at B = 3 and 7e-3 at
// B = 1; B = 2 would give 3e-5 (emulated), too coarse for the 1e-5 the exact paths promise.
//
// Layout. bytes (blocks, cols, q, 32) uint8: for a block of 32 output rows, code column c (inputs
// 8c … 8c+7, runs 2c and 2c+1 in the low and high nibble) and bit-plane i, the code byte of row r
// sits at byte position 0,2,4,6,16,18,20,22 (r = 0-7), 8,…,14,24,…,30 (8-15), 1,3,5,7,17,…,23 (16-23),
// 9,…,15,25,…,31 (24-31): the order in which the uint16 even / odd sums, widened in-lane, come out as
// four fp32 vectors of rows 0-7, 8-15, 16-23, 24-31. alpha (blocks, G, q, 32) fp32 in row order.
// Needs input and group sizes that are multiples of 8 (other layers take the fp32 path, lut_avx2.h).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "lut_avx2.h"

namespace lut::avx2_shuffle {

constexpr int64_t kRows32 = 32;   // output rows per block: one ymm of bytes
constexpr int64_t kSegCols = 64;  // code columns (8 inputs each) per segment at most: 2·64·255 < 65536

struct Args {
  const uint8_t* tables;  // (n, runs, B, 16) byte planes of the integer tables
  const float* scales;    // (n, segments) per-segment table scale s
  const uint8_t* bytes;   // (blocks, cols, planes, 32)
  const float* alpha;     // (blocks, groups, planes, 32)
  float* y;               // (n, out)
  int64_t n, out, cols, planes, groups, group_cols, segments;
};

inline int64_t segments_of(int64_t groups, int64_t group_cols) {
  return groups * ((group_cols + kSegCols - 1) / kSegCols);
}

// Rounds the fp32 tables (runs, 16) of one input row to B-byte integers, one scale per segment.
template <int B>
HANEUL_AVX2 void quantise_tables(const float* x, const float* table, int64_t cols, int64_t group_cols, uint8_t* q,
                                 float* scales) {
  constexpr int kLimit = (1 << (8 * B - 1)) - 1;
  const __m128i hi = _mm_set1_epi32(kLimit), lo = _mm_set1_epi32(-kLimit);
  const __m128i byte = _mm_set1_epi32(0xFF), bias = _mm_set1_epi32(128);
  int64_t seg = 0;
  for (int64_t g0 = 0; g0 < cols; g0 += group_cols) {
    for (int64_t c0 = g0; c0 < g0 + group_cols; c0 += kSegCols, ++seg) {
      const int64_t c1 = std::min(c0 + kSegCols, g0 + group_cols);
      float m = 0.f;
      for (int64_t j = 2 * c0; j < 2 * c1; ++j) {
        m = std::max(m, std::fabs(x[4 * j]) + std::fabs(x[4 * j + 1]) + std::fabs(x[4 * j + 2]) +
                            std::fabs(x[4 * j + 3]));
      }
      const float s = m > 0.f ? m / static_cast<float>(kLimit) : 1.f;
      scales[seg] = s;
      const __m128 inv = _mm_set1_ps(1.f / s);
      for (int64_t j = 2 * c0; j < 2 * c1; ++j) {
        __m128i v[4];  // entries 0-3, 4-7, 8-11, 12-15 as int32, rounded to nearest and clamped to ±L
        for (int r = 0; r < 4; ++r) {
          const __m128i rounded = _mm_cvtps_epi32(_mm_mul_ps(_mm_loadu_ps(table + j * 16 + 4 * r), inv));
          v[r] = _mm_max_epi32(lo, _mm_min_epi32(hi, rounded));
        }
        uint8_t* out = q + j * 16 * B;
        for (int beta = 0; beta < B; ++beta) {
          __m128i part[4];  // byte beta of each entry, as int32 in 0..255
          for (int r = 0; r < 4; ++r) {
            const __m128i shifted = _mm_srai_epi32(v[r], 8 * beta);
            part[r] = beta + 1 == B ? _mm_add_epi32(shifted, bias) : _mm_and_si128(shifted, byte);
          }
          const __m128i packed =
              _mm_packus_epi16(_mm_packus_epi32(part[0], part[1]), _mm_packus_epi32(part[2], part[3]));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * beta), packed);
        }
      }
    }
  }
}

// Row vector r (rows 8r … 8r+7) of uint16 even / odd byte sums, widened in-lane to int32: rows 0-7,
// 8-15 come from the even bytes, 16-23, 24-31 from the odd ones (the layout's byte order).
HANEUL_AVX2 inline __m256i widen(__m256i even, __m256i odd, int r) {
  const __m256i src = r < 2 ? even : odd;
  return r % 2 == 0 ? _mm256_unpacklo_epi16(src, _mm256_setzero_si256())
                    : _mm256_unpackhi_epi16(src, _mm256_setzero_si256());
}

// Adds one plane's lookups over code columns [c0, c1) of one block of 32 rows, times s · α, to the
// four fp32 row vectors in `acc`.
template <int B>
HANEUL_AVX2 void segment_plane(const Args& a, const uint8_t* table, float s, const uint8_t* bytes, const float* alpha,
                               int64_t c0, int64_t c1, float* acc) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i low8 = _mm256_set1_epi16(0x00FF);
  __m256i even[B], odd[B];  // per byte plane: uint16 sums of the bytes at even / odd positions
  for (int beta = 0; beta < B; ++beta) even[beta] = odd[beta] = _mm256_setzero_si256();
  for (int64_t c = c0; c < c1; ++c) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bytes + c * a.planes * kRows32));
    const __m256i first = _mm256_and_si256(v, low4);                          // run 2c
    const __m256i second = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);  // run 2c + 1
    const uint8_t* t = table + c * 32 * B;
    for (int beta = 0; beta < B; ++beta) {
      const __m256i t0 = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + 16 * beta)));
      const __m256i t1 =
          _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + 16 * (B + beta))));
      const __m256i e0 = _mm256_shuffle_epi8(t0, first);
      const __m256i e1 = _mm256_shuffle_epi8(t1, second);
      even[beta] =
          _mm256_add_epi16(even[beta], _mm256_add_epi16(_mm256_and_si256(e0, low8), _mm256_and_si256(e1, low8)));
      odd[beta] = _mm256_add_epi16(odd[beta], _mm256_add_epi16(_mm256_srli_epi16(e0, 8), _mm256_srli_epi16(e1, 8)));
    }
  }
  const __m256i bias = _mm256_set1_epi32(static_cast<int>(128 * 2 * (c1 - c0)));
  const __m256 scale = _mm256_set1_ps(s);
  for (int r = 0; r < 4; ++r) {
    __m256i sum = _mm256_slli_epi32(_mm256_sub_epi32(widen(even[B - 1], odd[B - 1], r), bias), 8 * (B - 1));
    for (int beta = 0; beta + 1 < B; ++beta) {
      sum = _mm256_add_epi32(sum, _mm256_slli_epi32(widen(even[beta], odd[beta], r), 8 * beta));
    }
    const __m256 w = _mm256_mul_ps(_mm256_loadu_ps(alpha + 8 * r), scale);
    _mm256_storeu_ps(acc + 8 * r, _mm256_fmadd_ps(w, _mm256_cvtepi32_ps(sum), _mm256_loadu_ps(acc + 8 * r)));
  }
}

template <int B>
HANEUL_AVX2 void run_blocks(const Args& a, int64_t first, int64_t last) {
  const int64_t block_bytes = a.cols * a.planes * kRows32;
  const int64_t block_alpha = a.groups * a.planes * kRows32;
  for (int64_t blk = first; blk < last; ++blk) {
    const uint8_t* bytes = a.bytes + blk * block_bytes;
    const float* alpha = a.alpha + blk * block_alpha;
    const int64_t row0 = blk * kRows32;
    const int64_t valid = std::min<int64_t>(kRows32, a.out - row0);
    for (int64_t b = 0; b < a.n; ++b) {
      const uint8_t* table = a.tables + b * a.cols * 32 * B;
      const float* scales = a.scales + b * a.segments;
      alignas(32) float acc[kRows32] = {0.f};
      int64_t seg = 0;
      for (int64_t g = 0; g < a.groups; ++g) {
        for (int64_t c0 = g * a.group_cols; c0 < (g + 1) * a.group_cols; c0 += kSegCols, ++seg) {
          const int64_t c1 = std::min(c0 + kSegCols, (g + 1) * a.group_cols);
          for (int64_t p = 0; p < a.planes; ++p) {
            segment_plane<B>(a, table, scales[seg], bytes + p * kRows32, alpha + (g * a.planes + p) * kRows32, c0,
                             c1, acc);
          }
        }
      }
      std::copy(acc, acc + valid, a.y + b * a.out + row0);
    }
  }
}

}  // namespace lut::avx2_shuffle
