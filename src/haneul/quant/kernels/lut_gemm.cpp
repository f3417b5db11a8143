// Lookup-table matrix multiply for BCQ weights (in the spirit of LUT-GEMM).
//
// Two implementations, chosen at run time:
//
// * `bcq_gemm_avx512` (CPUs with AVX-512): every run of 4 inputs gets a table of its 16 signed sums
//   ±x0 ±x1 ±x2 ±x3, which is exactly one zmm register of fp32. The codes are repacked once (in
//   Python, see `BCQLinear._kernel_operands`) so that one 32-bit lane holds 8 nibbles of ONE output
//   row: lane r of the 64-byte word (block, word, plane) holds row 16·block + r, bit-plane `plane`,
//   inputs 32·word … 32·word + 31. `_mm512_permutexvar_ps` reads only the low 4 bits of each lane,
//   so one permute gives the partial sums of 16 output rows for one 4-input run; shifting the word
//   right by 4 exposes the next run. Sums are scaled by α at group ends and row blocks are spread
//   over torch's threads. Only packed bytes are read from memory: 16 rows × 32 inputs × q bits
//   per q · 64 bytes.
// * `lut_gemm` (portable fallback): every run of 8 inputs gets a table of its 256 signed sums and
//   one packed code byte selects one entry, with scalar loops. Tables are laid out
//   [chunk][byte][batch] so the inner loop over the batch is contiguous.
//
// The AVX-512 code carries a target attribute instead of a global -mavx512f, so the extension still
// loads (and uses the fallback) on a CPU without AVX-512.
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/extension.h>

#include <algorithm>
#include <vector>

namespace {

constexpr int64_t kBlock = 8;  // batch rows handled together (one AVX register of floats)

// table[((c * 256) + k) * stride + b] = Σ_t sign_t(k) · x[b, 8c + t]; rows b ≥ n stay zero.
void build_tables(const float* x, int64_t n, int64_t in, int64_t stride, float* table) {
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

// One input row (decoding): scalar lookups with four independent sums to hide load latency.
void gemv(const float* table, const uint8_t* codes, const float* alpha, int64_t out, int64_t bits,
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
        for (; c + 4 <= per_group; c += 4) {
          s0 += t[c * 256 + r[c]];
          s1 += t[(c + 1) * 256 + r[c + 1]];
          s2 += t[(c + 2) * 256 + r[c + 2]];
          s3 += t[(c + 3) * 256 + r[c + 3]];
        }
        for (; c < per_group; ++c) s0 += t[c * 256 + r[c]];
        acc += alpha[(o * groups + g) * bits + i] * ((s0 + s1) + (s2 + s3));
      }
    }
    y[o] = acc;
  }
}

// Several input rows: each lookup reads kBlock contiguous floats (one vector add per code byte).
void gemm(const float* table, int64_t stride, const uint8_t* codes, const float* alpha, int64_t out,
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

}  // namespace

torch::Tensor lut_gemm(torch::Tensor x, torch::Tensor codes, torch::Tensor alpha, int64_t group_size) {
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
    std::vector<float> table(static_cast<size_t>(chunks) * 256);
    build_tables(xf.data_ptr<float>(), 1, in, 1, table.data());
    auto y = torch::empty({1, out}, xf.options());
    gemv(table.data(), cc.data_ptr<uint8_t>(), af.data_ptr<float>(), out, bits, chunks, groups, per_group,
         y.data_ptr<float>());
    return y.to(x.scalar_type());
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
// AVX-512 path: 16-entry tables in registers, 16 output rows per permute.
namespace {

#define HANEUL_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

constexpr int64_t kRows = 16;     // output rows per block: one zmm of fp32
constexpr int64_t kWordRuns = 8;  // 4-input runs per 32-bit lane (8 nibbles)

// table[j * 16 + k] = Σ_t sign_t(k) · x[4j + t] (bit t of k set: +, else −); inputs past `in` are 0.
HANEUL_AVX512 void build_tables16(const float* x, int64_t in, int64_t runs, float* table) {
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
HANEUL_AVX512 void block_planes(const float* table, int64_t runs, const uint8_t* words, const float* alpha,
                                int64_t planes, int64_t p0, int64_t groups, int64_t group_runs, __m512& acc) {
  const int64_t word_stride = planes * 64;
  int64_t j = 0;
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t end = g + 1 == groups ? runs : (g + 1) * group_runs;
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
    const float* a = alpha + (g * planes + p0) * kRows;
    for (int p = 0; p < PB; ++p) {
      acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + p * kRows), _mm512_add_ps(part[p][0], part[p][1]), acc);
    }
  }
}

struct Avx512Args {
  const float* tables;  // (n, runs, 16)
  const uint8_t* words;  // (blocks, words, planes, 16 lanes · 4 bytes)
  const float* alpha;    // (blocks, groups, planes, 16)
  float* y;              // (n, out)
  int64_t n, out, runs, words_per_row, planes, groups, group_runs;
};

HANEUL_AVX512 void run_blocks(const Avx512Args& a, int64_t first, int64_t last) {
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
          case 1: block_planes<1>(table, a.runs, words, alpha, a.planes, p0, a.groups, a.group_runs, acc); break;
          case 2: block_planes<2>(table, a.runs, words, alpha, a.planes, p0, a.groups, a.group_runs, acc); break;
          case 3: block_planes<3>(table, a.runs, words, alpha, a.planes, p0, a.groups, a.group_runs, acc); break;
          default: block_planes<4>(table, a.runs, words, alpha, a.planes, p0, a.groups, a.group_runs, acc); break;
        }
      }
      _mm512_mask_storeu_ps(a.y + b * a.out + row0, mask, acc);
    }
  }
}

HANEUL_AVX512 void build_all_tables(const float* x, int64_t n, int64_t in, int64_t runs, float* tables) {
  for (int64_t b = 0; b < n; ++b) build_tables16(x + b * in, in, runs, tables + b * runs * 16);
}

}  // namespace

bool simd_available() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

// x (n, in) · Ŵᵀ from repacked codes `words` (blocks, ⌈in/32⌉, q, 64) uint8 and scales `alpha`
// (blocks, groups, q, 16) fp32; see the file comment for the layout. Returns (n, out) in x's dtype.
torch::Tensor bcq_gemm_avx512(torch::Tensor x, torch::Tensor words, torch::Tensor alpha, int64_t out,
                              int64_t group_size) {
  TORCH_CHECK(simd_available(), "bcq_gemm_avx512: this CPU lacks AVX-512; use lut_gemm");
  TORCH_CHECK(x.dim() == 2 && words.dim() == 4 && alpha.dim() == 4, "bcq_gemm_avx512: bad ranks");
  TORCH_CHECK(words.scalar_type() == torch::kUInt8 && alpha.scalar_type() == torch::kFloat32,
              "bcq_gemm_avx512: words must be uint8 and alpha float32");
  TORCH_CHECK(words.is_contiguous() && alpha.is_contiguous(), "bcq_gemm_avx512: operands must be contiguous");
  auto xf = x.to(torch::kFloat32).contiguous();
  const int64_t n = xf.size(0), in = xf.size(1);
  const int64_t blocks = words.size(0), words_per_row = words.size(1), planes = words.size(2);
  const int64_t groups = alpha.size(1);
  const int64_t runs = (in + 3) / 4;
  TORCH_CHECK(words.size(3) == 64 && words_per_row == (in + 31) / 32, "bcq_gemm_avx512: words do not fit x");
  TORCH_CHECK(blocks == (out + kRows - 1) / kRows && alpha.size(0) == blocks && alpha.size(2) == planes &&
                  alpha.size(3) == kRows,
              "bcq_gemm_avx512: alpha does not fit the words");
  TORCH_CHECK(groups * group_size == in && (groups == 1 || group_size % 4 == 0),
              "bcq_gemm_avx512: group size must divide the input and be a multiple of 4");
  // The tables are small (64 bytes per 4 inputs and row); a per-thread buffer saves an allocation
  // per call, which matters for the small layers of a decoding step.
  thread_local std::vector<float> tables;
  tables.resize(static_cast<size_t>(n * runs * 16));
  build_all_tables(xf.data_ptr<float>(), n, in, runs, tables.data());
  auto y = torch::empty({n, out}, xf.options());
  Avx512Args args{tables.data(), words.data_ptr<uint8_t>(), alpha.data_ptr<float>(),
                  y.data_ptr<float>(), n, out, runs, words_per_row, planes, groups,
                  groups == 1 ? runs : group_size / 4};
  // Threads only pay off with enough work per thread: ~16 k permutes per chunk of blocks.
  const int64_t per_block = std::max<int64_t>(1, runs * planes * n);
  const int64_t grain = std::max<int64_t>(1, 16384 / per_block);
  if (blocks <= grain || at::get_num_threads() == 1) {
    run_blocks(args, 0, blocks);
  } else {
    at::parallel_for(0, blocks, grain, [&](int64_t first, int64_t last) { run_blocks(args, first, last); });
  }
  return x.scalar_type() == torch::kFloat32 ? y : y.to(x.scalar_type());
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("lut_gemm", &lut_gemm, "BCQ lookup-table matmul: x (n, in) · Ŵᵀ from packed codes and scales");
  m.def("bcq_gemm_avx512", &bcq_gemm_avx512, "AVX-512 BCQ matmul from repacked codes and scales");
  m.def("simd_available", &simd_available, "whether this CPU can run bcq_gemm_avx512");
}
