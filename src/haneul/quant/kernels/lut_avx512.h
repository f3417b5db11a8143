// AVX-512 path: 16-entry fp32 tables held in one zmm register, 16 output rows per permute.
//
// Every run of 4 inputs x[4j .. 4j+3] gets the table of its 16 signed sums ±x0 ±x1 ±x2 ±x3 (64 bytes,
// exactly one zmm). One 64-byte word of the repacked codes (see lut_common.h) holds, for 16 rows and
// one bit-plane, 8 nibbles per 32-bit lane; `_mm512_permutexvar_ps` reads only the low 4 bits of each
// lane, so one permute yields the partial sums of 16 rows for one run, and a 4-bit shift exposes the
// next run. Per group the sums of each plane are scaled by α and added. Exact up to fp32 rounding.
//
// Shapes: tables (n, runs, 16) fp32, words (blocks, ⌈in/32⌉, q, 64) uint8, alpha (blocks, G, q, 16).
// Compiled with a target attribute so the module still loads on CPUs without AVX-512.
#pragma once

#include <immintrin.h>

#include <algorithm>

#include "lut_common.h"

#define HANEUL_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

namespace lut::avx512 {

// table[j * 16 + k] = Σ_t sign_t(k) · x[4j + t] (bit t of k set: +, else −); inputs past `in` are 0.
HANEUL_AVX512 inline void build_tables(const float* x, int64_t in, int64_t runs, float* table) {
  const __m512i lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  __m512 sign[4];
  for (int t = 0; t < 4; ++t) {
    const __mmask16 plus = _mm512_test_epi32_mask(lanes, _mm512_set1_epi32(1 << t));
    sign[t] = _mm512_mask_blend_ps(plus, _mm512_set1_ps(-1.f), _mm512_set1_ps(1.f));
  }
  for (int64_t j = 0; j < runs; ++j) {
    float v[4];
    for (int t = 0; t < 4; ++t) v[t] = 4 * j + t < in ? x[4 * j + t] : 0.f;
    __m512 s = _mm512_mul_ps(sign[0], _mm512_set1_ps(v[0]));
    s = _mm512_fmadd_ps(sign[1], _mm512_set1_ps(v[1]), s);
    s = _mm512_fmadd_ps(sign[2], _mm512_set1_ps(v[2]), s);
    s = _mm512_fmadd_ps(sign[3], _mm512_set1_ps(v[3]), s);
    _mm512_storeu_ps(table + j * 16, s);
  }
}

// Adds Σ_p α[g, p0 + p] · (Σ_{j in g} table_j[code]) over PB planes starting at p0 to `acc` for one
// block of 16 rows. `words` is the block's repacked codes (word stride `planes` · 64 bytes), `alpha`
// the block's scales laid out [group][plane][16 rows].
template <int PB>
HANEUL_AVX512 void block_planes(const BlockArgs& a, const float* table, const uint8_t* words,
                                const float* alpha, int64_t p0, __m512& acc) {
  const int64_t word_stride = a.planes * 64;
  int64_t j = 0;
  for (int64_t g = 0; g < a.groups; ++g) {
    const int64_t end = group_end(a, g);
    // two sums per plane (even / odd runs) so the adds of one plane do not wait on each other
    __m512 part[PB][2];
    for (int p = 0; p < PB; ++p) part[p][0] = part[p][1] = _mm512_setzero_ps();
    while (j < end) {
      const uint8_t* w = words + (j / kWordRuns) * word_stride + p0 * 64;
      if (j % kWordRuns == 0 && j + kWordRuns <= end) {  // a whole word: 8 runs, no reloads
        __m512i v[PB];
        for (int p = 0; p < PB; ++p) v[p] = _mm512_loadu_si512(w + p * 64);
        const float* t = table + j * 16;
#pragma GCC unroll 8
        for (int k = 0; k < kWordRuns; ++k) {
          const __m512 tk = _mm512_loadu_ps(t + k * 16);
          for (int p = 0; p < PB; ++p) {
            part[p][k & 1] = _mm512_add_ps(part[p][k & 1], _mm512_permutexvar_ps(v[p], tk));
            v[p] = _mm512_srli_epi32(v[p], 4);
          }
        }
        j += kWordRuns;
      } else {  // a group edge inside a word (group sizes not a multiple of 32) or the last runs
        const __m128i shift = _mm_cvtsi32_si128(static_cast<int>(4 * (j % kWordRuns)));
        const __m512 tj = _mm512_loadu_ps(table + j * 16);
        for (int p = 0; p < PB; ++p) {
          const __m512i v = _mm512_srl_epi32(_mm512_loadu_si512(w + p * 64), shift);
          part[p][0] = _mm512_add_ps(part[p][0], _mm512_permutexvar_ps(v, tj));
        }
        ++j;
      }
    }
    const float* al = alpha + (g * a.planes + p0) * kRows;
    for (int p = 0; p < PB; ++p) {
      acc = _mm512_fmadd_ps(_mm512_loadu_ps(al + p * kRows), _mm512_add_ps(part[p][0], part[p][1]), acc);
    }
  }
}

// Row blocks [first, last) for every input row; a block's codes stay in L1 across the input rows.
HANEUL_AVX512 inline void run_blocks(const BlockArgs& a, int64_t first, int64_t last) {
  const int64_t block_bytes = a.words_per_row * a.planes * 64;
  const int64_t block_alpha = a.groups * a.planes * kRows;
  for (int64_t blk = first; blk < last; ++blk) {
    const uint8_t* words = a.words + blk * block_bytes;
    const float* alpha = a.alpha + blk * block_alpha;
    const int64_t row0 = blk * kRows;
    const int64_t valid = std::min<int64_t>(kRows, a.out - row0);
    const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1u);
    for (int64_t b = 0; b < a.n; ++b) {
      const float* table = a.tables + b * a.runs * 16;
      __m512 acc = _mm512_setzero_ps();
      for (int64_t p0 = 0; p0 < a.planes; p0 += 4) {
        switch (std::min<int64_t>(4, a.planes - p0)) {
          case 1: block_planes<1>(a, table, words, alpha, p0, acc); break;
          case 2: block_planes<2>(a, table, words, alpha, p0, acc); break;
          case 3: block_planes<3>(a, table, words, alpha, p0, acc); break;
          default: block_planes<4>(a, table, words, alpha, p0, acc); break;
        }
      }
      _mm512_mask_storeu_ps(a.y + b * a.out + row0, mask, acc);
    }
  }
}

}  // namespace lut::avx512
