// gemma4 bench: prefill and decode speed of a model on this machine, in the spirit of llama-bench.
//
//   prefill ("pp<P>"): P prompt tokens in batches of -b, timed from an empty context (or from
//                      --ctx-depth D tokens already in the cache);
//   decode  ("tg<N>"): N tokens one at a time from the same starting depth;
// each repeated -r times (mean ± sd of tokens/s over the repetitions), after one untimed warm-up
// pass that pages the weights in. --membw measures this machine's memory read bandwidth between
// the decoded tokens and puts decode against its roof: a decoded token reads every weight once,
// so it cannot be faster than bandwidth / weight bytes.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/cli_common.h"
#include "core/error.h"
#include "core/large_buffer.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "ops/cpu_features.h"

namespace g4::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct Stats {
  double mean = 0, sd = 0;
};

Stats stats_of(const std::vector<double>& v) {
  Stats s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= double(v.size());
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(ss / double(v.size() - 1));
  }
  return s;
}

// Read bandwidth: every thread streams its share of a buffer far larger than the caches, summing
// 64-bit words with independent accumulators. On a shared machine the bandwidth swings within
// milliseconds (consecutive 15 ms passes on a 2-vCPU VM: anywhere from 16 to 45 GB/s), so the bench
// runs one pass after every decoded token (untimed for decode) and puts each repetition against
// the bandwidth over its own passes (bytes / seconds); the best single pass is reported as the
// peak. Before each repetition's passes, one uncounted pass warms the buffer's pages. The buffer
// is a LargeBuffer, on 2 MiB pages like the re-laid-out weights: on 4 KiB pages (a plain new[])
// the probe read 51-56 GB/s in the seconds a huge-page buffer read 55-64 on a Zen 5 VM, a roof
// ~10% low whenever that VM's bandwidth was high.
class BandwidthProbe {
 public:
  explicit BandwidthProbe(ThreadPool& pool)
      : pool_(pool), buf_(size_t(kBytes), LargeBuffer::Fill::kUncommitted) {
    pool_.parallel_for(kWords, 1 << 16, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i)
        words()[i] = uint64_t(i) * 0x9E3779B97F4A7C15ULL;  // commit the pages
    });
  }

  // Reads the buffer once; the seconds it took go into the current repetition's totals.
  void pass() {
    const double seconds = read_once();
    seconds_ += seconds;
    bytes_ += double(kBytes);
    peak_ = std::max(peak_, double(kBytes) / seconds);
  }

  // Starts a repetition: a warm-up pass (not counted), totals reset.
  void begin() {
    read_once();
    seconds_ = bytes_ = 0;
  }
  // The repetition's bandwidth in bytes/s (bytes / seconds over its passes).
  double bandwidth() const { return seconds_ > 0 ? bytes_ / seconds_ : 0; }
  double peak() const { return peak_; }  // the fastest single pass so far, bytes/s

 private:
  static constexpr int64_t kBytes = int64_t(512) << 20;  // 512 MiB: 10x and more any L3 cache
  static constexpr int64_t kWords = kBytes / 8;

  // One read of the whole buffer over the pool; returns its seconds.
  double read_once() {
    const int parts = pool_.size();
    std::vector<uint64_t> sinks(size_t(parts) * 8);  // one cache line per thread
    const auto start = Clock::now();
    pool_.parallel_for(parts, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t part = b; part < e; ++part) {
        const uint64_t* p = words() + kWords * part / parts;
        const int64_t n = kWords * (part + 1) / parts - kWords * part / parts;
        uint64_t acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t i = 0;
        for (; i + 8 <= n; i += 8)
          for (int j = 0; j < 8; ++j) acc[j] += p[i + j];
        for (; i < n; ++i) acc[0] += p[i];
        sinks[size_t(part) * 8] =
            acc[0] + acc[1] + acc[2] + acc[3] + acc[4] + acc[5] + acc[6] + acc[7];
      }
    });
    const double seconds = seconds_since(start);
    sink_ += sinks[0];
    return seconds;
  }

  ThreadPool& pool_;
  uint64_t* words() { return reinterpret_cast<uint64_t*>(buf_.data()); }

  LargeBuffer buf_;
  double seconds_ = 0, bytes_ = 0, peak_ = 0;
  uint64_t sink_ = 0;  // keeps the sums alive
};

std::string human_bytes(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GB", bytes / 1e9);
  return buf;
}

struct BenchOptions {
  std::string model;
  int64_t n_prompt = 512, n_gen = 128, batch = 512, depth = 0;
  int reps = 5;
  int threads = 0;
  bool json = false, membw = false, precise = false;
};

// Feeds `tokens` through the model in batches of `batch`; logits only for the last one.
void feed(ForwardPass& forward, KvCache& cache, const std::vector<int32_t>& tokens, int64_t batch) {
  std::vector<float> logits;
  for (size_t start = 0; start < tokens.size(); start += size_t(batch)) {
    const size_t end = std::min(tokens.size(), start + size_t(batch));
    SequenceInput in;
    in.cache = &cache;
    in.tokens.assign(tokens.begin() + int64_t(start), tokens.begin() + int64_t(end));
    in.output_rows = {int32_t(end - start - 1)};
    forward.run(std::span<SequenceInput>(&in, 1), logits);
  }
}

void run_bench(const BenchOptions& opt) {
  const auto model = Gemma4Model::load(opt.model);
  const Gemma4HParams& hp = model->hp;
  ThreadPool pool(opt.threads);
  const MatmulMode mode = opt.precise ? MatmulMode::kPrecise : MatmulMode::kFast;
  ForwardPass forward(*model, pool, mode);

  const WeightsFootprint footprint = weights_footprint(model->weights);
  const double params = double(footprint.parameters), weight_bytes = double(footprint.bytes);

  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> token(0, hp.n_vocab - 1);
  auto random_tokens = [&](int64_t n) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (int32_t& id : ids) id = token(rng);
    return ids;
  };

  // One cache per repetition: the depth, then the prompt; rolled back to the depth for decode
  // (ring_extra lets the sliding layers roll back over the prompt).
  const int64_t n_ctx = opt.depth + std::max(opt.n_prompt, opt.n_gen) + 1;
  const int64_t ring_extra = opt.n_prompt;
  {  // warm-up: pages the weights in, grows the scratch buffers
    KvCache cache(hp, KvCacheConfig{.n_ctx = n_ctx, .ring_extra = ring_extra});
    feed(forward, cache, random_tokens(std::min<int64_t>(std::max<int64_t>(opt.n_prompt, 1), 16)),
         opt.batch);
    feed(forward, cache, random_tokens(1), opt.batch);
  }

  std::unique_ptr<BandwidthProbe> probe;
  if (opt.membw) probe = std::make_unique<BandwidthProbe>(pool);
  std::vector<double> prefill_tps, decode_tps, bandwidths, roof_fractions;
  for (int rep = 0; rep < opt.reps; ++rep) {
    KvCache cache(hp, KvCacheConfig{.n_ctx = n_ctx, .ring_extra = ring_extra});
    if (opt.depth > 0) feed(forward, cache, random_tokens(opt.depth), opt.batch);
    if (opt.n_prompt > 0) {
      const std::vector<int32_t> prompt = random_tokens(opt.n_prompt);
      const auto start = Clock::now();
      feed(forward, cache, prompt, opt.batch);
      prefill_tps.push_back(double(opt.n_prompt) / seconds_since(start));
      cache.truncate(opt.depth);
    }
    if (probe) probe->begin();
    if (opt.n_gen > 0) {
      const std::vector<int32_t> gen = random_tokens(opt.n_gen);
      double seconds = 0;
      for (int32_t id : gen) {
        const auto start = Clock::now();
        feed(forward, cache, {id}, 1);
        seconds += seconds_since(start);
        if (probe) probe->pass();
      }
      decode_tps.push_back(double(opt.n_gen) / seconds);
      if (probe) {
        bandwidths.push_back(probe->bandwidth());
        roof_fractions.push_back(decode_tps.back() / (bandwidths.back() / weight_bytes));
      }
    } else if (probe) {
      for (int i = 0; i < 8; ++i) probe->pass();
      bandwidths.push_back(probe->bandwidth());
    }
    if (!opt.json) std::fprintf(stderr, "  repetition %d/%d done\n", rep + 1, opt.reps);
  }

  const Stats pp = stats_of(prefill_tps), tg = stats_of(decode_tps);
  const Stats bw = stats_of(bandwidths), fraction = stats_of(roof_fractions);
  const double roof = bw.mean / weight_bytes;
  const double peak = probe ? probe->peak() : 0;
  const double peak_fraction = peak > 0 ? tg.mean / (peak / weight_bytes) : 0;
  const char* level = cpu_level_name(selected_cpu_level());

  if (opt.json) {
    nlohmann::ordered_json j;
    j["model"] = opt.model;
    j["model_bytes"] = weight_bytes;
    j["parameters"] = params;
    j["n_layer"] = hp.n_layer;
    j["threads"] = pool.size();
    j["kernels"] = level;
    j["matmul"] = opt.precise ? "precise" : "fast";
    j["ctx_depth"] = opt.depth;
    j["repetitions"] = opt.reps;
    if (opt.n_prompt > 0)
      j["prefill"] = {{"n_tokens", opt.n_prompt},
                      {"batch", opt.batch},
                      {"tokens_per_s", pp.mean},
                      {"tokens_per_s_sd", pp.sd},
                      {"samples", prefill_tps}};
    if (opt.n_gen > 0)
      j["decode"] = {{"n_tokens", opt.n_gen},
                     {"tokens_per_s", tg.mean},
                     {"tokens_per_s_sd", tg.sd},
                     {"samples", decode_tps}};
    if (opt.membw) {
      j["membw_bytes_per_s"] = bw.mean;
      j["membw_bytes_per_s_sd"] = bw.sd;
      j["membw_peak_bytes_per_s"] = peak;
      j["decode_roof_tokens_per_s"] = roof;
      if (opt.n_gen > 0) {
        j["decode_roof_fraction"] = fraction.mean;
        j["decode_roof_fraction_sd"] = fraction.sd;
        j["decode_peak_roof_fraction"] = peak_fraction;
      }
    }
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::printf("model: %s\n  %s, %.2f B parameters, %d layers\n", opt.model.c_str(),
              human_bytes(weight_bytes).c_str(), params / 1e9, hp.n_layer);
  std::printf("threads: %d, kernels: %s, matmul: %s, context depth: %lld, repetitions: %d\n",
              pool.size(), level,
              opt.precise ? "precise (float32 activations)" : "fast (int8 activations)",
              (long long)opt.depth, opt.reps);
  std::printf("| %-16s | %18s |\n|------------------|--------------------|\n", "test", "tokens/s");
  char name[64], at_depth[32] = "";
  if (opt.depth) std::snprintf(at_depth, sizeof at_depth, " @ d%lld", (long long)opt.depth);
  if (opt.n_prompt > 0) {
    std::snprintf(name, sizeof name, "pp%lld%s", (long long)opt.n_prompt, at_depth);
    std::printf("| %-16s | %9.2f ± %6.2f |\n", name, pp.mean, pp.sd);
  }
  if (opt.n_gen > 0) {
    std::snprintf(name, sizeof name, "tg%lld%s", (long long)opt.n_gen, at_depth);
    std::printf("| %-16s | %9.2f ± %6.2f |\n", name, tg.mean, tg.sd);
  }
  if (opt.membw) {
    std::printf(
        "memory read bandwidth: %.1f ± %.1f GB/s (%d threads; fastest pass %.1f GB/s) -> "
        "decode roof %.2f tokens/s",
        bw.mean / 1e9, bw.sd / 1e9, pool.size(), peak / 1e9, roof);
    if (opt.n_gen > 0)
      std::printf(
          "; decode runs at %.0f ± %.0f%% of it (each repetition against the bandwidth "
          "measured between its tokens; %.0f%% of the fastest pass's roof)",
          100.0 * fraction.mean, 100.0 * fraction.sd, 100.0 * peak_fraction);
    std::printf("\n");
  }
}

}  // namespace

void register_bench(CLI::App& app) {
  auto opt = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "measure prefill and decode speed (tokens/s)");
  cmd->add_option("-m,--model", opt->model, "GGUF model file")->required();
  cmd->add_option("-p,--n-prompt", opt->n_prompt,
                  "prompt tokens to prefill (default 512; 0 = skip)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 20));
  cmd->add_option("-n,--n-gen", opt->n_gen, "tokens to decode (default 128; 0 = skip)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 20));
  cmd->add_option("-b,--batch", opt->batch,
                  "most tokens per forward pass when prefilling (default 512)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  cmd->add_option("-r,--repetitions", opt->reps, "repetitions of each test (default 5)")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--ctx-depth", opt->depth,
                  "tokens already in the context before each test (default 0)")
      ->check(CLI::Range(int64_t(0), int64_t(1) << 22));
  cmd->add_flag("--json", opt->json, "print the results as JSON");
  cmd->add_flag("--membw", opt->membw, "measure memory bandwidth and the decode roof");
  cmd->add_flag("--precise", opt->precise,
                "float32 activations in every matmul (the exact-activation mode)");
  add_threads_option(*cmd, opt->threads);
  cmd->callback([opt] { run_bench(*opt); });
}

}  // namespace g4::cli
