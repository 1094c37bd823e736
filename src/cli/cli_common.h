// Helpers shared by the gemma4 subcommands.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "model/hf_convert.h"

namespace g4::cli {

// "2,105,3" -> {2, 105, 3}; throws g4::Error naming the bad item.
std::vector<int32_t> parse_int_list(const std::string& text, const char* what);

// Adds -t/--threads (default: every hardware thread).
void add_threads_option(CLI::App& cmd, int& threads);

// "1.50 GiB": binary units, two decimals (bytes below 1 KiB as an integer).
std::string human_bytes(double bytes);

// Progress of writing a GGUF tensor by tensor, on stderr: a bar redrawn in place on a terminal,
// a line per tensor otherwise (logs). `verb` starts each line ("converting").
TensorProgressFn stderr_tensor_progress(const std::string& verb);

// Each subcommand registers itself here (one file per subcommand).
void register_info(CLI::App& app);
void register_run(CLI::App& app);
void register_logits(CLI::App& app);
void register_init_random(CLI::App& app);
void register_convert(CLI::App& app);
void register_quantize(CLI::App& app);

}  // namespace g4::cli
