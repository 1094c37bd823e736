#include "cli/cli_common.h"

#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <memory>
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

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

TensorProgressFn stderr_tensor_progress(const std::string& verb) {
  const bool terminal = ::isatty(STDERR_FILENO) == 1;
  return [verb, terminal](const TensorProgress& p) {
    const double fraction = p.bytes_total ? double(p.bytes_done) / double(p.bytes_total) : 1.0;
    const int width = 30, filled = int(fraction * width + 0.5);
    const std::string bar =
        std::string(size_t(filled), '#') + std::string(size_t(width - filled), '.');
    const std::string line =
        cat(verb, " ", p.output, " [", bar, "] ", int(fraction * 100.0 + 0.5), "% (", p.index, "/",
            p.count, ") ", human_bytes(double(p.bytes_done)), " ", p.tensor);
    if (terminal) {
      std::fprintf(stderr, "\r%-120.120s", line.c_str());
      if (p.index == p.count) std::fputc('\n', stderr);
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
  };
}

}  // namespace g4::cli
