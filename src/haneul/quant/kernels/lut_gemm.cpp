// Lookup-table matrix multiply for BCQ weights (in the spirit of LUT-GEMM): x (n, in) · Ŵᵀ where
// Ŵ[o, G] = Σ_i α[o, G, i] · b_i[o, G] with b_i ∈ {−1, +1}, without ever building Ŵ.
//
// One path per instruction set, each in its own header with its algorithm and shapes:
//
// * lut_avx512.h — 16-entry fp32 tables per 4 inputs in one zmm, 16 output rows per permute.
// * lut_avx2_shuffle.h — AVX2: 16-entry tables rounded to 24-bit integers per segment (exact to
//   ~1e-7, with a proven bound), three byte shuffles per 32 output rows; with 8-bit tables the
//   opt-in fast mode "avx2-int8" (~1e-2 relative error, one shuffle per 32 rows).
// * lut_avx2.h   — AVX2 with fp32 tables, 8 output rows per pair of permutes: for layers whose
//   input or group sizes are not multiples of 8.
// * lut_scalar.h — 256-entry tables per 8 inputs, one scalar lookup per packed code byte.
//
// avx512 and the fp32 AVX2 kernel read codes repacked once per layer into 16-row words
// (lut_common.h), the byte-shuffle kernels 32-row bytes; the portable path reads the layer's packed
// codes directly. All but the int8 mode agree with dequantise-then-matmul to about 1e-7.
//
// The module is compiled without -march flags: each SIMD path carries a target attribute, and the
// Python side picks a path at run time from `isa_supported` (CPUID via __builtin_cpu_supports), so
// one build loads and runs on every x86-64 CPU (and builds elsewhere with the portable path only).
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <algorithm>
#include <string>
#include <vector>

#include "lut_common.h"
#include "lut_scalar.h"

#if defined(__x86_64__) || defined(__i386__)
#define HANEUL_X86 1
#include "lut_avx2.h"
#include "lut_avx2_shuffle.h"
#include "lut_avx512.h"
#endif

// Whether this CPU can run the path `isa` ("avx512", "avx2", "scalar" or "avx2-int8").
bool isa_supported(const std::string& isa) {
  if (isa == "scalar") return true;
#ifdef HANEUL_X86
  __builtin_cpu_init();
  if (isa == "avx2" || isa == "avx2-int8") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == "avx512") {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("fma");
  }
#endif
  return false;
}

bool simd_available() { return isa_supported("avx512"); }

// ---------------------------------------------------------------------------------------------------
// Portable path: x (n, in), codes (out, q, in/8) uint8, alpha (out, G, q). Returns (n, out).
torch::Tensor lut_gemm(torch::Tensor x, torch::Tensor codes, torch::Tensor alpha, int64_t group_size) {
  using namespace lut::scalar;
  TORCH_CHECK(x.dim() == 2 && codes.dim() == 3 && alpha.dim() == 3, "lut_gemm: bad ranks");
  TORCH_CHECK(codes.scalar_type() == torch::kUInt8, "lut_gemm: codes must be uint8");
  TORCH_CHECK(group_size % 8 == 0, "lut_gemm: group size must be a multiple of 8");
  auto xf = x.to(torch::kFloat32).contiguous();
  auto af = alpha.to(torch::kFloat32).contiguous();
  auto cc = codes.contiguous();
  const int64_t n = xf.size(0), in = xf.size(1);
  const int64_t out = cc.size(0), bits = cc.size(1), chunks = cc.size(2);
  TORCH_CHECK(in % 8 == 0 && chunks == in / 8, "lut_gemm: input size must match the packed codes");
  const int64_t groups = af.size(1);
  const int64_t per_group = group_size / 8;
  TORCH_CHECK(groups * group_size == in && af.size(0) == out && af.size(2) == bits, "lut_gemm: bad alpha shape");

  if (n == 1) {
    thread_local std::vector<float> table;  // reused: decoding calls this once per layer and token
    table.resize(static_cast<size_t>(chunks) * 256);
    build_tables(xf.data_ptr<float>(), 1, in, 1, table.data());
    auto y = torch::empty({1, out}, xf.options());
    gemv(table.data(), cc.data_ptr<uint8_t>(), af.data_ptr<float>(), out, bits, chunks, groups, per_group,
         y.data_ptr<float>());
    return x.scalar_type() == torch::kFloat32 ? y : y.to(x.scalar_type());
  }
  const int64_t stride = (n + kBlock - 1) / kBlock * kBlock;
  std::vector<float> table(static_cast<size_t>(chunks) * 256 * stride, 0.f);
  build_tables(xf.data_ptr<float>(), n, in, stride, table.data());
  auto y = torch::empty({out, stride}, xf.options());
  gemm(table.data(), stride, cc.data_ptr<uint8_t>(), af.data_ptr<float>(), out, bits, chunks, groups, per_group,
       y.data_ptr<float>());
  return y.narrow(1, 0, n).t().contiguous().to(x.scalar_type());
}

// ---------------------------------------------------------------------------------------------------
// SIMD paths: x (n, in) · Ŵᵀ from repacked codes `words` (blocks, ⌈in/32⌉, q, 64) uint8 and scales
// `alpha` (blocks, groups, q, 16) fp32 (lut_common.h). Returns (n, out) in x's dtype.
#ifdef HANEUL_X86
namespace {

enum class Isa { kAvx2, kAvx512 };

torch::Tensor bcq_gemm_simd(Isa isa, const char* name, torch::Tensor x, torch::Tensor words, torch::Tensor alpha,
                            int64_t out, int64_t group_size) {
  using lut::kRows;
  TORCH_CHECK(x.dim() == 2 && words.dim() == 4 && alpha.dim() == 4, name, ": bad ranks");
  TORCH_CHECK(words.scalar_type() == torch::kUInt8 && alpha.scalar_type() == torch::kFloat32, name,
              ": words must be uint8 and alpha float32");
  TORCH_CHECK(words.is_contiguous() && alpha.is_contiguous(), name, ": operands must be contiguous");
  auto xf = x.to(torch::kFloat32).contiguous();
  const int64_t n = xf.size(0), in = xf.size(1);
  const int64_t blocks = words.size(0), words_per_row = words.size(1), planes = words.size(2);
  const int64_t groups = alpha.size(1);
  const int64_t runs = (in + 3) / 4;
  TORCH_CHECK(words.size(3) == 64 && words_per_row == (in + 31) / 32, name, ": words do not fit x");
  TORCH_CHECK(blocks == (out + kRows - 1) / kRows && alpha.size(0) == blocks && alpha.size(2) == planes &&
                  alpha.size(3) == kRows,
              name, ": alpha does not fit the words");
  TORCH_CHECK(groups * group_size == in && (groups == 1 || group_size % 4 == 0), name,
              ": group size must divide the input and be a multiple of 4");
  // The tables are small (64 bytes per 4 inputs and row); a per-thread buffer saves an allocation
  // per call, which matters for the small layers of a decoding step.
  thread_local std::vector<float> tables;
  tables.resize(static_cast<size_t>(n * runs * 16));
  const float* xp = xf.data_ptr<float>();
  for (int64_t b = 0; b < n; ++b) {
    float* t = tables.data() + b * runs * 16;
    if (isa == Isa::kAvx512) {
      lut::avx512::build_tables(xp + b * in, in, runs, t);
    } else {
      lut::avx2::build_tables(xp + b * in, in, runs, t);
    }
  }
  auto y = torch::empty({n, out}, xf.options());
  const lut::BlockArgs args{tables.data(), words.data_ptr<uint8_t>(), alpha.data_ptr<float>(),
                            y.data_ptr<float>(), n, out, runs, words_per_row, planes, groups,
                            groups == 1 ? runs : group_size / 4};
  auto run = [&](int64_t first, int64_t last) {
    if (isa == Isa::kAvx512) {
      lut::avx512::run_blocks(args, first, last);
    } else {
      lut::avx2::run_blocks(args, first, last);
    }
  };
  // Threads only pay off with enough work per thread: ~16 k lookups per chunk of blocks.
  const int64_t per_block = std::max<int64_t>(1, runs * planes * n);
  const int64_t grain = std::max<int64_t>(1, 16384 / per_block);
  if (blocks <= grain || at::get_num_threads() == 1) {
    run(0, blocks);
  } else {
    at::parallel_for(0, blocks, grain, run);
  }
  return x.scalar_type() == torch::kFloat32 ? y : y.to(x.scalar_type());
}

}  // namespace

#else
namespace {

enum class Isa { kAvx2, kAvx512 };

torch::Tensor bcq_gemm_simd(Isa, const char* name, torch::Tensor, torch::Tensor, torch::Tensor, int64_t, int64_t) {
  TORCH_CHECK(false, name, ": this build has no x86 SIMD paths; use lut_gemm");
}

}  // namespace
#endif

torch::Tensor bcq_gemm_avx512(torch::Tensor x, torch::Tensor words, torch::Tensor alpha, int64_t out,
                              int64_t group_size) {
  TORCH_CHECK(isa_supported("avx512"), "bcq_gemm_avx512: this CPU lacks AVX-512; use bcq_gemm_avx2 or lut_gemm");
  return bcq_gemm_simd(Isa::kAvx512, "bcq_gemm_avx512", x, words, alpha, out, group_size);
}

torch::Tensor bcq_gemm_avx2(torch::Tensor x, torch::Tensor words, torch::Tensor alpha, int64_t out,
                            int64_t group_size) {
  TORCH_CHECK(isa_supported("avx2"), "bcq_gemm_avx2: this CPU lacks AVX2/FMA; use lut_gemm");
  return bcq_gemm_simd(Isa::kAvx2, "bcq_gemm_avx2", x, words, alpha, out, group_size);
}

// Byte-shuffle paths: x (n, in) · Ŵᵀ from `bytes` (blocks, in/8, q, 32) uint8 and `alpha`
// (blocks, G, q, 32) fp32 (layout in lut_avx2_shuffle.h), with B-byte integer tables. Returns (n, out).
namespace {

template <int B>
torch::Tensor bcq_gemm_shuffle(const char* name, torch::Tensor x, torch::Tensor bytes, torch::Tensor alpha,
                               int64_t out, int64_t group_size) {
#ifdef HANEUL_X86
  namespace f = lut::avx2_shuffle;
  TORCH_CHECK(isa_supported("avx2"), name, ": this CPU lacks AVX2/FMA; use lut_gemm");
  TORCH_CHECK(x.dim() == 2 && bytes.dim() == 4 && alpha.dim() == 4, name, ": bad ranks");
  TORCH_CHECK(bytes.scalar_type() == torch::kUInt8 && alpha.scalar_type() == torch::kFloat32, name,
              ": bytes must be uint8 and alpha float32");
  TORCH_CHECK(bytes.is_contiguous() && alpha.is_contiguous(), name, ": operands must be contiguous");
  auto xf = x.to(torch::kFloat32).contiguous();
  const int64_t n = xf.size(0), in = xf.size(1);
  const int64_t blocks = bytes.size(0), cols = bytes.size(1), planes = bytes.size(2), groups = alpha.size(1);
  TORCH_CHECK(in % 8 == 0 && group_size % 8 == 0 && groups * group_size == in, name,
              ": input and group sizes must be multiples of 8");
  TORCH_CHECK(cols == in / 8 && bytes.size(3) == f::kRows32, name, ": bytes do not fit x");
  TORCH_CHECK(blocks == (out + f::kRows32 - 1) / f::kRows32 && alpha.size(0) == blocks && alpha.size(2) == planes &&
                  alpha.size(3) == f::kRows32,
              name, ": alpha does not fit the bytes");
  const int64_t runs = in / 4, group_cols = group_size / 8;
  const int64_t segments = f::segments_of(groups, group_cols);
  // per-thread buffers: decoding calls this once per layer and token
  thread_local std::vector<float> tables;
  thread_local std::vector<uint8_t> q;
  thread_local std::vector<float> scales;
  tables.resize(static_cast<size_t>(runs * 16));
  q.resize(static_cast<size_t>(n * runs * 16 * B));
  scales.resize(static_cast<size_t>(n * segments));
  const float* xp = xf.data_ptr<float>();
  for (int64_t b = 0; b < n; ++b) {
    lut::avx2::build_tables(xp + b * in, in, runs, tables.data());
    f::quantise_tables<B>(xp + b * in, tables.data(), cols, group_cols, q.data() + b * runs * 16 * B,
                          scales.data() + b * segments);
  }
  auto y = torch::empty({n, out}, xf.options());
  const f::Args args{q.data(), scales.data(), bytes.data_ptr<uint8_t>(), alpha.data_ptr<float>(),
                     y.data_ptr<float>(), n, out, cols, planes, groups, group_cols, segments};
  const int64_t per_block = std::max<int64_t>(1, 2 * B * runs * planes * n);  // ~ 16-row lookups
  const int64_t grain = std::max<int64_t>(1, 16384 / per_block);
  if (blocks <= grain || at::get_num_threads() == 1) {
    f::run_blocks<B>(args, 0, blocks);
  } else {
    at::parallel_for(0, blocks, grain, [&](int64_t first, int64_t last) { f::run_blocks<B>(args, first, last); });
  }
  return x.scalar_type() == torch::kFloat32 ? y : y.to(x.scalar_type());
#else
  TORCH_CHECK(false, name, ": this build has no x86 SIMD paths; use lut_gemm");
#endif
}

}  // namespace

torch::Tensor bcq_gemm_avx2_bytes(torch::Tensor x, torch::Tensor bytes, torch::Tensor alpha, int64_t out,
                                  int64_t group_size) {
  return bcq_gemm_shuffle<3>("bcq_gemm_avx2_bytes", x, bytes, alpha, out, group_size);
}

torch::Tensor bcq_gemm_avx2_int8(torch::Tensor x, torch::Tensor bytes, torch::Tensor alpha, int64_t out,
                                 int64_t group_size) {
  return bcq_gemm_shuffle<1>("bcq_gemm_avx2_int8", x, bytes, alpha, out, group_size);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("lut_gemm", &lut_gemm, "portable BCQ lookup-table matmul: x (n, in) · Ŵᵀ from packed codes and scales");
  m.def("bcq_gemm_avx512", &bcq_gemm_avx512, "AVX-512 BCQ matmul from repacked codes and scales");
  m.def("bcq_gemm_avx2", &bcq_gemm_avx2, "AVX2 BCQ matmul from the same repacked codes and scales");
  m.def("bcq_gemm_avx2_bytes", &bcq_gemm_avx2_bytes, "AVX2 byte-shuffle BCQ matmul, 24-bit tables (exact)");
  m.def("bcq_gemm_avx2_int8", &bcq_gemm_avx2_int8, "AVX2 fast mode: int8 activation tables, byte shuffles");
  m.def("isa_supported", &isa_supported, "whether this CPU can run the path 'avx512', 'avx2' or 'scalar'");
  m.def("simd_available", &simd_available, "whether this CPU can run bcq_gemm_avx512");
}
