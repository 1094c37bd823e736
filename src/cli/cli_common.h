// Helpers shared by the gemma4 subcommands.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace g4::cli {

// "2,105,3" -> {2, 105, 3}; throws g4::Error naming the bad item.
std::vector<int32_t> parse_int_list(const std::string& text, const char* what);

// Adds -t/--threads (default: every hardware thread).
void add_threads_option(CLI::App& cmd, int& threads);

// Each subcommand registers itself here (one file per subcommand).
void register_info(CLI::App& app);
void register_run(CLI::App& app);
void register_logits(CLI::App& app);
void register_init_random(CLI::App& app);
void register_bench(CLI::App& app);

}  // namespace g4::cli
