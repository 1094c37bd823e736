// gemma4: the command-line front end. Each subcommand lives in its own cmd_*.cpp file.
#include <cstdio>

#include "cli/cli_common.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"gemma4: run Google's Gemma 4 12B from GGUF files on your own machine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "gemma4 0.1.0");
  g4::cli::register_info(app);
  g4::cli::register_run(app);
  g4::cli::register_logits(app);
  g4::cli::register_init_random(app);
  g4::cli::register_tokenize(app);
  g4::cli::register_chat_template(app);
  g4::cli::register_chat(app);
  g4::cli::register_embed_media(app);
  g4::cli::register_convert(app);
  g4::cli::register_quantize(app);
  g4::cli::register_bench(app);
  g4::cli::register_serve(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const g4::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
    return 1;
  }
  return 0;
}
