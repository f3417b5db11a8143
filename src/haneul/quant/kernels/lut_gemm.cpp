// Lookup-table matrix multiply for BCQ weights (in the spirit of LUT-GEMM).
//
// For every run of 8 inputs the kernel builds a table of the 256 signed sums ±x0 ±x1 … ±x7; one
// packed code byte then selects one entry, so a bit-plane row costs in/8 table reads instead of
// `in` multiply-adds, and only the packed bytes are read from memory. Tables are laid out
// [chunk][byte][batch] so the inner loop over the batch is contiguous.
#include <torch/extension.h>
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

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("lut_gemm", &lut_gemm, "BCQ lookup-table matmul: x (n, in) · Ŵᵀ from packed codes and scales");
}
