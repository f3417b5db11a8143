// Shared by the SIMD paths of lut_gemm.cpp: the repacked operand layout and the per-call arguments.
//
// Both SIMD paths read the same repacked operands (built once per layer by
// `BCQLinear._kernel_operands`), so switching paths needs no second copy of the codes:
//
//   words  (blocks, ⌈in/32⌉, planes, 64) uint8: for a block of kRows = 16 output rows, 32 inputs and
//          one bit-plane, 32-bit lane r holds the 32 code bits of row 16·block + r; nibble k of the
//          lane is the 4-input run 8·word + k (bit t of the nibble: sign of input 4·run + t).
//   alpha  (blocks, groups, planes, 16) fp32: the scales of the same 16 rows.
//   tables (n, runs, 16) fp32: table[b, j, k] = Σ_t ±x[b, 4j + t], + where bit t of k is set.
#pragma once

#include <cstdint>

namespace lut {

constexpr int64_t kRows = 16;     // output rows per repacked block
constexpr int64_t kWordRuns = 8;  // 4-input runs per 32-bit lane (8 nibbles)

struct BlockArgs {
  const float* tables;   // (n, runs, 16)
  const uint8_t* words;  // (blocks, words, planes, 16 lanes · 4 bytes)
  const float* alpha;    // (blocks, groups, planes, 16)
  float* y;              // (n, out)
  int64_t n, out, runs, words_per_row, planes, groups, group_runs;
};

// The last run (exclusive) of group g: group ends are counted in runs of 4 inputs.
inline int64_t group_end(const BlockArgs& a, int64_t g) {
  return g + 1 == a.groups ? a.runs : (g + 1) * a.group_runs;
}

}  // namespace lut
