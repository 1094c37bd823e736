#include "cli/cli_common.h"

#include <charconv>
#include <unistd.h>

#include <random>
#include <thread>

#include "core/error.h"

namespace g4::cli {

std::vector<int32_t> parse_int_list(const std::string& text, const char* what) {
  std::vector<int32_t> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    int32_t value = 0;
    const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size())
      fail("bad ", what, " '", item, "' in '", text, "' (expected comma-separated integers)");
    out.push_back(value);
    start = end + 1;
  }
  return out;
}

void add_threads_option(CLI::App& cmd, int& threads) {
  threads = int(std::max(1u, std::thread::hardware_concurrency()));
  cmd.add_option("-t,--threads", threads, "worker threads (default: all hardware threads)")
      ->check(CLI::Range(1, 1024));
}

void SamplingFlags::add_to(CLI::App& cmd) {
  cmd.add_option("--temp", temperature, "temperature; 0 = greedy (default: the model's, else 1.0)");
  cmd.add_option("--top-k", top_k, "top-k; 0 = off (default: the model's, else 64)");
  cmd.add_option("--top-p", top_p, "top-p; 1 = off (default: the model's, else 0.95)");
  cmd.add_option("--min-p", min_p, "min-p; 0 = off (default 0)");
  cmd.add_option("--repeat-penalty", repeat_penalty, "repetition penalty; 1 = off");
  cmd.add_option("--presence-penalty", presence_penalty, "presence penalty; 0 = off");
  cmd.add_option("--frequency-penalty", frequency_penalty, "frequency penalty; 0 = off");
  cmd.add_option("--seed", seed, "random seed (default: random)");
}

SamplingParams SamplingFlags::resolve(const SamplingParams& model_defaults) const {
  SamplingParams p = model_defaults;
  if (temperature) p.temperature = *temperature;
  if (top_k) p.top_k = *top_k;
  if (top_p) p.top_p = *top_p;
  if (min_p) p.min_p = *min_p;
  p.repeat_penalty = repeat_penalty;
  p.presence_penalty = presence_penalty;
  p.frequency_penalty = frequency_penalty;
  p.seed = seed ? *seed : std::random_device{}();
  return p;
}

int64_t default_context(const Gemma4HParams& hp, int64_t requested) {
  if (requested > 0) return requested;
  return hp.n_ctx_train > 0 ? std::min<int64_t>(hp.n_ctx_train, 4096) : 4096;
}

bool stdout_is_terminal() { return ::isatty(STDOUT_FILENO) == 1; }

}  // namespace g4::cli
