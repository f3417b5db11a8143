// Portable path (any CPU, plain C++): 8-input tables of 256 entries, one lookup per packed code byte.
//
// Every run of 8 inputs gets the table of its 256 signed sums Σ_t ±x[8c + t] (+ where bit t of the
// byte is set), built incrementally (entry k = entry k without its lowest set bit + 2·x[that bit]).
// A packed code byte of row o, plane i, column c then selects one entry, so a row costs one load and
// add per 8 inputs and plane; group sums are scaled by α. This reads the layer's own packed codes
// (no repacking) and needs group and input sizes that are multiples of 8. Exact up to fp32 rounding.
//
// Shapes: x (n, in) fp32, codes (out, q, in/8) uint8, alpha (out, G, q) fp32, tables
// [chunk][256][batch] so that the inner loop over a batch is contiguous.
#pragma once

#include <cstdint>
#include <cstring>

namespace lut::scalar {

constexpr int64_t kBlock = 8;  // batch rows handled together (the compiler vectorises these loops)

// table[((c * 256) + k) * stride + b] = Σ_t sign_t(k) · x[b, 8c + t]; rows b ≥ n stay zero.
inline void build_tables(const float* x, int64_t n, int64_t in, int64_t stride, float* table) {
  const int64_t chunks = in / 8;
  for (int64_t b = 0; b < n; ++b) {
    const float* xb = x + b * in;
    for (int64_t c = 0; c < chunks; ++c) {
      const float* v = xb + c * 8;
      float* t = table + c * 256 * stride + b;
      float all_neg = 0.f;
      for (int j = 0; j < 8; ++j) all_neg -= v[j];
      t[0] = all_neg;
      // entry k = entry (k without its lowest set bit) + 2 · x[lowest set bit]
      for (int k = 1; k < 256; ++k) {
        t[k * stride] = t[(k & (k - 1)) * stride] + 2.f * v[__builtin_ctz(k)];
      }
    }
  }
}

// One input row (decoding): scalar lookups with four independent sums to hide load latency; the
// code bytes are read eight at a time (one load instead of eight: 5-10% faster here). Tables of
// 4-input runs (16 entries, all in L1) were slower: twice the lookups, and these hit L1/L2 anyway.
inline void gemv(const float* table, const uint8_t* codes, const float* alpha, int64_t out, int64_t bits,
                 int64_t chunks, int64_t groups, int64_t per_group, float* y) {
  for (int64_t o = 0; o < out; ++o) {
    float acc = 0.f;
    for (int64_t i = 0; i < bits; ++i) {
      const uint8_t* row = codes + (o * bits + i) * chunks;
      for (int64_t g = 0; g < groups; ++g) {
        const uint8_t* r = row + g * per_group;
        const float* t = table + g * per_group * 256;
        float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
        int64_t c = 0;
        for (; c + 8 <= per_group; c += 8, t += 8 * 256) {
          uint64_t w;
          std::memcpy(&w, r + c, 8);
          s0 += t[w & 0xFF];
          s1 += t[256 + ((w >> 8) & 0xFF)];
          s2 += t[512 + ((w >> 16) & 0xFF)];
          s3 += t[768 + ((w >> 24) & 0xFF)];
          s0 += t[1024 + ((w >> 32) & 0xFF)];
          s1 += t[1280 + ((w >> 40) & 0xFF)];
          s2 += t[1536 + ((w >> 48) & 0xFF)];
          s3 += t[1792 + (w >> 56)];
        }
        for (; c < per_group; ++c, t += 256) s0 += t[r[c]];
        acc += alpha[(o * groups + g) * bits + i] * ((s0 + s1) + (s2 + s3));
      }
    }
    y[o] = acc;
  }
}

// Several input rows: each lookup reads kBlock contiguous floats (one vector add per code byte).
inline void gemm(const float* table, int64_t stride, const uint8_t* codes, const float* alpha, int64_t out,
          int64_t bits, int64_t chunks, int64_t groups, int64_t per_group, float* y) {
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t bb = 0; bb < stride; bb += kBlock) {
      float acc[kBlock] = {0.f};
      for (int64_t i = 0; i < bits; ++i) {
        const uint8_t* row = codes + (o * bits + i) * chunks;
        for (int64_t g = 0; g < groups; ++g) {
          float part[kBlock] = {0.f};
          for (int64_t c = g * per_group; c < (g + 1) * per_group; ++c) {
            const float* t = table + (c * 256 + row[c]) * stride + bb;
#pragma GCC unroll 8
            for (int64_t j = 0; j < kBlock; ++j) part[j] += t[j];
          }
          const float a = alpha[(o * groups + g) * bits + i];
#pragma GCC unroll 8
          for (int64_t j = 0; j < kBlock; ++j) acc[j] += a * part[j];
        }
      }
      for (int64_t j = 0; j < kBlock; ++j) y[o * stride + bb + j] = acc[j];
    }
  }
}

}  // namespace lut::scalar
