// AVX2 path, fp32 tables (AVX2 + FMA: AMD Zen, Intel client chips without AVX-512): 8 rows per lookup.
//
// The "avx2" path runs the byte-shuffle kernel (lut_avx2_shuffle.h, 24-bit tables) on layers whose
// input and group sizes are multiples of 8, and this kernel on the others (group sizes that are
// multiples of 4, or inputs that are not multiples of 8); its fp32 table builder serves both.
//
// Same tables and repacked operands as the AVX-512 path (lut_common.h): every run of 4 inputs has a
// 16-entry fp32 table of its signed sums ±x0 ±x1 ±x2 ±x3, and a 32-bit lane of a code word holds
// 8 nibbles (8 runs) of one output row. A 64-byte word is read as two ymm halves of 8 rows each.
// A ymm holds only 8 fp32 entries, so the table is kept as two registers, entries 0-7 and 8-15:
// `_mm256_permutevar8x32_ps` looks up the low 3 bits of each lane in both halves, and the lane's bit 3
// (shifted to the sign bit) picks one of them with `_mm256_blendv_ps`. Per group the sums of each
// plane are scaled by α and added, as on AVX-512. Exact up to fp32 rounding (no activation
// quantisation): the result matches the AVX-512 and scalar paths to fp32 rounding.
//
// Cost per 8 rows, run and bit-plane: 2 permutes, 1 blend, 2 shifts, 1 add, against 4 FMAs and
// 128 bytes of weight traffic for dense fp32.
//
// Shapes: tables (n, runs, 16) fp32, words (blocks, ⌈in/32⌉, q, 64) uint8, alpha (blocks, G, q, 16).
// Compiled with a target attribute so the module still loads on any x86-64 CPU.
#pragma once

#include <immintrin.h>

#include <algorithm>

#include "lut_common.h"

#define HANEUL_AVX2 __attribute__((target("avx2,fma")))

namespace lut::avx2 {

constexpr int64_t kHalf = 8;  // rows per ymm of fp32

// table[j * 16 + k] = Σ_t sign_t(k) · x[4j + t] (bit t of k set: +, else −); inputs past `in` are 0.
HANEUL_AVX2 inline void build_tables(const float* x, int64_t in, int64_t runs, float* table) {
  // entries 8-15 differ from 0-7 only in bit 3 (the sign of x3)
  __m256 sign[4];
  for (int t = 0; t < 3; ++t) {
    const int m = 1 << t;
    sign[t] = _mm256_setr_ps(0 & m ? 1.f : -1.f, 1 & m ? 1.f : -1.f, 2 & m ? 1.f : -1.f, 3 & m ? 1.f : -1.f,
                             4 & m ? 1.f : -1.f, 5 & m ? 1.f : -1.f, 6 & m ? 1.f : -1.f, 7 & m ? 1.f : -1.f);
  }
  for (int64_t j = 0; j < runs; ++j) {
    float v[4];
    for (int t = 0; t < 4; ++t) v[t] = 4 * j + t < in ? x[4 * j + t] : 0.f;
    __m256 s = _mm256_mul_ps(sign[0], _mm256_set1_ps(v[0]));
    s = _mm256_fmadd_ps(sign[1], _mm256_set1_ps(v[1]), s);
    s = _mm256_fmadd_ps(sign[2], _mm256_set1_ps(v[2]), s);
    const __m256 x3 = _mm256_set1_ps(v[3]);
    _mm256_storeu_ps(table + j * 16, _mm256_sub_ps(s, x3));
    _mm256_storeu_ps(table + j * 16 + 8, _mm256_add_ps(s, x3));
  }
}

// One lookup for 8 rows: entry (v & 15) of the 16-entry table held as (lo: 0-7, hi: 8-15).
HANEUL_AVX2 inline __m256 lookup(__m256 lo, __m256 hi, __m256i v) {
  const __m256 from_lo = _mm256_permutevar8x32_ps(lo, v);  // reads bits 0-2 of each lane
  const __m256 from_hi = _mm256_permutevar8x32_ps(hi, v);
  return _mm256_blendv_ps(from_lo, from_hi, _mm256_castsi256_ps(_mm256_slli_epi32(v, 28)));  // bit 3
}

// Adds Σ_p α[g, p0 + p] · (Σ_{j in g} table_j[code]) over PB planes starting at p0 to `acc` for the
// 8 rows of one half of a 16-row block. `words` points at the half's first word (word stride
// `planes` · 64 bytes), `alpha` at the half's scales laid out [group][plane][16 rows].
template <int PB>
HANEUL_AVX2 void half_planes(const BlockArgs& a, const float* table, const uint8_t* words, const float* alpha,
                             int64_t p0, __m256& acc) {
  // with few planes, two sums per plane (even / odd runs) keep the adds from waiting on each other;
  // with more, the planes themselves are independent chains and the registers are needed
  constexpr int kParts = PB <= 2 ? 2 : 1;
  const int64_t word_stride = a.planes * 64;
  int64_t j = 0;
  for (int64_t g = 0; g < a.groups; ++g) {
    const int64_t end = group_end(a, g);
    __m256 part[PB][kParts];
    for (int p = 0; p < PB; ++p)
      for (int s = 0; s < kParts; ++s) part[p][s] = _mm256_setzero_ps();
    while (j < end) {
      const uint8_t* w = words + (j / kWordRuns) * word_stride + p0 * 64;
      if (j % kWordRuns == 0 && j + kWordRuns <= end) {  // a whole word: 8 runs, no reloads
        __m256i v[PB];
        for (int p = 0; p < PB; ++p) v[p] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + p * 64));
        const float* t = table + j * 16;
#pragma GCC unroll 8
        for (int k = 0; k < kWordRuns; ++k) {
          const __m256 lo = _mm256_loadu_ps(t + k * 16), hi = _mm256_loadu_ps(t + k * 16 + 8);
          for (int p = 0; p < PB; ++p) {
            part[p][k % kParts] = _mm256_add_ps(part[p][k % kParts], lookup(lo, hi, v[p]));
            v[p] = _mm256_srli_epi32(v[p], 4);
          }
        }
        j += kWordRuns;
      } else {  // a group edge inside a word (group sizes not a multiple of 32) or the last runs
        const __m128i shift = _mm_cvtsi32_si128(static_cast<int>(4 * (j % kWordRuns)));
        const __m256 lo = _mm256_loadu_ps(table + j * 16), hi = _mm256_loadu_ps(table + j * 16 + 8);
        for (int p = 0; p < PB; ++p) {
          const __m256i v =
              _mm256_srl_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + p * 64)), shift);
          part[p][0] = _mm256_add_ps(part[p][0], lookup(lo, hi, v));
        }
        ++j;
      }
    }
    const float* al = alpha + (g * a.planes + p0) * kRows;
    for (int p = 0; p < PB; ++p) {
      __m256 sum = part[p][0];
      for (int s = 1; s < kParts; ++s) sum = _mm256_add_ps(sum, part[p][s]);
      acc = _mm256_fmadd_ps(_mm256_loadu_ps(al + p * kRows), sum, acc);
    }
  }
}

// Row blocks [first, last) for every input row; a block's codes stay in L1 across the input rows.
HANEUL_AVX2 inline void run_blocks(const BlockArgs& a, int64_t first, int64_t last) {
  const int64_t block_bytes = a.words_per_row * a.planes * 64;
  const int64_t block_alpha = a.groups * a.planes * kRows;
  for (int64_t blk = first; blk < last; ++blk) {
    for (int64_t h = 0; h < kRows / kHalf; ++h) {
      const int64_t row0 = blk * kRows + h * kHalf;
      const int64_t valid = std::min<int64_t>(kHalf, a.out - row0);
      if (valid <= 0) break;  // the padding half of the last block: nothing to compute
      const uint8_t* words = a.words + blk * block_bytes + h * kHalf * 4;
      const float* alpha = a.alpha + blk * block_alpha + h * kHalf;
      for (int64_t b = 0; b < a.n; ++b) {
        const float* table = a.tables + b * a.runs * 16;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t p0 = 0; p0 < a.planes; p0 += 4) {
          switch (std::min<int64_t>(4, a.planes - p0)) {
            case 1: half_planes<1>(a, table, words, alpha, p0, acc); break;
            case 2: half_planes<2>(a, table, words, alpha, p0, acc); break;
            case 3: half_planes<3>(a, table, words, alpha, p0, acc); break;
            default: half_planes<4>(a, table, words, alpha, p0, acc); break;
          }
        }
        float* y = a.y + b * a.out + row0;
        if (valid == kHalf) {
          _mm256_storeu_ps(y, acc);
        } else {
          alignas(32) float tmp[kHalf];
          _mm256_store_ps(tmp, acc);
          std::copy(tmp, tmp + valid, y);
        }
      }
    }
  }
}

}  // namespace lut::avx2
