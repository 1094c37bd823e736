#include "cli/cli_common.h"

#include <charconv>
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

}  // namespace g4::cli
