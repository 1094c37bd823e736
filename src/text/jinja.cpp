#include "text/jinja.h"

#include "core/error.h"
#include "text/jinja_renderer.h"

namespace g4::jinja {

Template Template::parse(std::string_view source, std::string name) {
  auto program = std::make_shared<TemplateProgram>();
  program->name = std::move(name);
  program->body = parse_template(source, program->name);
  Template result;
  result.program_ = std::move(program);
  return result;
}

std::string Template::render(const nlohmann::ordered_json& variables,
                             const RenderOptions& options) const {
  if (!program_) fail("rendering a template that was never parsed");
  Renderer renderer(*program_, options);
  return renderer.render(variables);
}

const std::string& Template::name() const {
  static const std::string unnamed = "template";
  return program_ ? program_->name : unnamed;
}

}  // namespace g4::jinja
