#include "text/chat_template.h"

#include "core/error.h"

namespace g4 {

namespace {

// gemma4.cpp's Gemma 4 template (spec §6). Every tag strips the whitespace around it, so the
// layout here does not reach the prompt; the prompt text comes from the quoted strings.
//   value(v, key, schema, skip): a value in Gemma's tool syntax: strings wrapped in <|"|>,
//     mappings as {key:value,...} with sorted bare keys, lists as [a,b]; `schema` uppercases
//     "type" values (declarations); `skip` drops one key of the outermost mapping.
constexpr std::string_view kBuiltinGemma4Template = R"JINJA(
{%- macro value(v, key='', schema=false, skip='') -%}
  {%- if v is string -%}
    {{- '<|"|>' + (v | upper if schema and key == 'type' else v) + '<|"|>' -}}
  {%- elif v is boolean -%}
    {{- 'true' if v else 'false' -}}
  {%- elif v is mapping -%}
    {{- '{' -}}
    {%- set sep = namespace(text='') -%}
    {%- for k, item in v | dictsort -%}
      {%- if k != skip -%}
        {{- sep.text + k + ':' + value(item, k, schema) -}}
        {%- set sep.text = ',' -%}
      {%- endif -%}
    {%- endfor -%}
    {{- '}' -}}
  {%- elif v is sequence -%}
    {{- '[' -}}
    {%- for item in v -%}
      {{- (',' if not loop.first else '') + value(item, key, schema) -}}
    {%- endfor -%}
    {{- ']' -}}
  {%- else -%}
    {{- v -}}
  {%- endif -%}
{%- endmacro -%}

{%- macro strip_thinking(text) -%}
  {%- set kept = namespace(text='') -%}
  {%- for piece in text.split('<channel|>') -%}
    {%- set kept.text = kept.text + piece.split('<|channel>')[0] -%}
  {%- endfor -%}
  {{- kept.text | trim -}}
{%- endmacro -%}

{%- macro tool_response(name, body) -%}
  {%- if body is mapping -%}
    {{- '<|tool_response>response:' + name + value(body) + '<tool_response|>' -}}
  {%- else -%}
    {{- '<|tool_response>response:' + name + '{value:' + value(body) + '}<tool_response|>' -}}
  {%- endif -%}
{%- endmacro -%}

{%- macro text_parts(parts) -%}
  {%- set joined = namespace(text='') -%}
  {%- for part in parts if part['type'] == 'text' -%}
    {%- set joined.text = joined.text + part['text'] -%}
  {%- endfor -%}
  {{- joined.text -}}
{%- endmacro -%}

{{- bos_token -}}
{%- set first_role = messages[0]['role'] if messages else '' -%}
{%- set has_system = first_role in ['system', 'developer'] -%}
{%- set loop_messages = messages[1:] if has_system else messages -%}

{%- if enable_thinking or tools or has_system -%}
  {{- '<|turn>system\n' -}}
  {%- if enable_thinking -%}
    {{- '<|think|>\n' -}}
  {%- endif -%}
  {%- if has_system -%}
    {{- messages[0]['content'] | trim -}}
  {%- endif -%}
  {%- for tool in tools or [] -%}
    {%- set function = tool['function'] if tool['function'] is defined else tool -%}
    {{- '<|tool>declaration:' + function['name'] + value(function, '', true, 'name') + '<tool|>' -}}
  {%- endfor -%}
  {{- '<turn|>\n' -}}
{%- endif -%}

{%- set last_user = namespace(index=-1) -%}
{%- for message in loop_messages -%}
  {%- if message['role'] == 'user' -%}
    {%- set last_user.index = loop.index0 -%}
  {%- endif -%}
{%- endfor -%}

{%- set state = namespace(last='', model_turn_open=false) -%}
{%- for message in loop_messages -%}
{%- if message['role'] != 'tool' -%}
  {%- set index = loop.index0 -%}
  {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
  {%- if not (role == 'model' and state.model_turn_open) -%}
    {{- '<|turn>' + role + '\n' -}}
  {%- endif -%}
  {%- set state.model_turn_open = false -%}
  {%- set state.last = '' -%}
  {%- set calls = message.get('tool_calls') or [] -%}
  {%- set content = message.get('content') -%}

  {%- set thinking = message.get('reasoning') or message.get('reasoning_content') -%}
  {%- if thinking and calls and index > last_user.index -%}
    {{- '<|channel>thought\n' + thinking + '\n<channel|>' -}}
  {%- endif -%}

  {%- for call in calls -%}
    {%- set function = call['function'] -%}
    {%- set arguments = function['arguments'] -%}
    {{- '<|tool_call>call:' + function['name'] -}}
    {{- value(arguments) if arguments is mapping else '{' + (arguments or '') + '}' -}}
    {{- '<tool_call|>' -}}
    {%- set state.last = 'tool_call' -%}
  {%- endfor -%}

  {%- if calls -%}
    {#- The tool messages right after this one answer its calls. -#}
    {%- set scan = namespace(open=true, count=0) -%}
    {%- for follow in loop_messages[index + 1:] -%}
      {%- if scan.open and follow['role'] == 'tool' -%}
        {%- set name = namespace(text=follow.get('name') or '') -%}
        {%- for call in calls -%}
          {%- if call.get('id') and call.get('id') == follow.get('tool_call_id') -%}
            {%- set name.text = call['function']['name'] -%}
          {%- endif -%}
        {%- endfor -%}
        {%- if not name.text and scan.count < calls | length -%}
          {%- set name.text = calls[scan.count]['function']['name'] -%}
        {%- endif -%}
        {%- set body = follow.get('content') -%}
        {{- tool_response(name.text or 'unknown', text_parts(body) if body is sequence and body is not string and body is not mapping else body) -}}
        {%- set scan.count = scan.count + 1 -%}
        {%- set state.last = 'tool_response' -%}
      {%- else -%}
        {%- set scan.open = false -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}

  {%- if content is string -%}
    {{- strip_thinking(content) if role == 'model' else content | trim -}}
  {%- elif content is sequence -%}
    {%- for part in content -%}
      {%- if part['type'] == 'text' -%}
        {{- strip_thinking(part['text']) if role == 'model' else part['text'] | trim -}}
      {%- elif part['type'] in ['image', 'audio', 'video'] -%}
        {{- '<|' + part['type'] + '|>' -}}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}

  {%- if state.last == 'tool_call' -%}
    {{- '<|tool_response>' -}}
  {%- elif state.last == 'tool_response' and not content -%}
    {%- set state.model_turn_open = true -%}
  {%- else -%}
    {{- '<turn|>\n' -}}
  {%- endif -%}
{%- endif -%}
{%- endfor -%}

{%- if add_generation_prompt and state.last not in ['tool_call', 'tool_response'] -%}
  {{- '<|turn>model\n' -}}
  {%- if not enable_thinking -%}
    {{- '<|channel>thought\n<channel|>' -}}
  {%- endif -%}
{%- endif -%}
)JINJA";

std::string part_type_for_template(const std::string& type) {
  if (type == "image_url" || type == "input_image") return "image";
  if (type == "input_audio" || type == "audio_url") return "audio";
  if (type == "video_url") return "video";
  if (type == "input_text") return "text";
  return type;
}

nlohmann::ordered_json normalize_parts(const nlohmann::ordered_json& parts, size_t message_index) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& part : parts) {
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
      fail("chat request: messages[", message_index,
           "].content parts must be objects with a string \"type\"");
    }
    nlohmann::ordered_json copy = part;
    copy["type"] = part_type_for_template(part["type"].get<std::string>());
    out.push_back(std::move(copy));
  }
  return out;
}

// A system prompt given as text parts becomes one string (Gemma templates trim it as a string).
nlohmann::ordered_json join_text_parts(const nlohmann::ordered_json& parts, size_t message_index) {
  std::string text;
  for (const auto& part : parts) {
    if (part["type"] != "text") {
      fail("chat request: messages[", message_index, "] (", "system/developer",
           ") may only contain text parts, found \"", part["type"].get<std::string>(), "\"");
    }
    if (!part.contains("text") || !part["text"].is_string()) {
      fail("chat request: messages[", message_index, "] has a text part without a string \"text\"");
    }
    if (!text.empty()) text += "\n\n";
    text += part["text"].get<std::string>();
  }
  return text;
}

nlohmann::ordered_json normalize_tool_calls(const nlohmann::ordered_json& calls,
                                            size_t message_index) {
  if (!calls.is_array())
    fail("chat request: messages[", message_index, "].tool_calls must be a list");
  nlohmann::ordered_json out = calls;
  for (auto& call : out) {
    if (!call.is_object() || !call.contains("function") || !call["function"].is_object() ||
        !call["function"].contains("name") || !call["function"]["name"].is_string()) {
      fail("chat request: messages[", message_index,
           "].tool_calls entries need a \"function\" with a string \"name\"");
    }
    auto& function = call["function"];
    if (function.contains("arguments") && function["arguments"].is_string()) {
      // OpenAI sends arguments as a JSON string; templates format an object.
      auto parsed = nlohmann::ordered_json::parse(function["arguments"].get<std::string>(), nullptr,
                                                  /*allow_exceptions=*/false);
      if (parsed.is_object()) function["arguments"] = std::move(parsed);
    }
  }
  return out;
}

nlohmann::ordered_json normalize_messages(const nlohmann::ordered_json& messages) {
  if (!messages.is_array()) fail("chat request: \"messages\" must be a list");
  if (messages.empty()) fail("chat request: \"messages\" is empty");
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& message = messages[i];
    if (!message.is_object()) fail("chat request: messages[", i, "] must be an object");
    if (!message.contains("role") || !message["role"].is_string()) {
      fail("chat request: messages[", i, "] needs a string \"role\"");
    }
    nlohmann::ordered_json copy = message;
    const std::string role = message["role"].get<std::string>();
    if (message.contains("content") && message["content"].is_array()) {
      copy["content"] = normalize_parts(message["content"], i);
      if (role == "system" || role == "developer")
        copy["content"] = join_text_parts(copy["content"], i);
    } else if (message.contains("content") && !message["content"].is_string() &&
               !message["content"].is_null()) {
      fail("chat request: messages[", i, "].content must be a string, a list of parts or null");
    }
    if (message.contains("tool_calls") && !message["tool_calls"].is_null()) {
      copy["tool_calls"] = normalize_tool_calls(message["tool_calls"], i);
    }
    out.push_back(std::move(copy));
  }
  return out;
}

}  // namespace

std::string_view builtin_gemma4_chat_template() {
  return kBuiltinGemma4Template;
}

nlohmann::ordered_json chat_template_variables(const nlohmann::ordered_json& request,
                                               const ChatTemplateOptions& options) {
  if (!request.is_object()) fail("chat request must be a JSON object");
  if (!request.contains("messages")) fail("chat request has no \"messages\"");
  nlohmann::ordered_json vars = nlohmann::ordered_json::object();
  vars["messages"] = normalize_messages(request["messages"]);
  vars["tools"] = nullptr;
  vars["documents"] = nullptr;
  vars["add_generation_prompt"] = true;
  for (const auto& [key, value] : request.items()) {
    if (key == "messages") continue;
    if (key == "tools" && !value.is_null() && !value.is_array()) {
      fail("chat request: \"tools\" must be a list");
    }
    vars[key] = value;
  }
  vars["bos_token"] = options.bos_token;
  vars["eos_token"] = options.eos_token;
  vars["pad_token"] = options.pad_token;
  vars["unk_token"] = options.unk_token;
  return vars;
}

ChatTemplate ChatTemplate::parse(std::string_view source, std::string name) {
  ChatTemplate result;
  result.template_ = jinja::Template::parse(source, std::move(name));
  return result;
}

ChatTemplate ChatTemplate::from_model(const std::optional<std::string>& model_template) {
  if (model_template && !model_template->empty()) {
    return parse(*model_template, "chat template (from the model file)");
  }
  ChatTemplate result = parse(kBuiltinGemma4Template, "built-in Gemma 4 chat template");
  result.builtin_ = true;
  return result;
}

std::string ChatTemplate::render(const nlohmann::ordered_json& request,
                                 const ChatTemplateOptions& options) const {
  return template_.render(chat_template_variables(request, options), options.render);
}

std::string render_chat(std::string_view template_source, const nlohmann::ordered_json& request,
                        const ChatTemplateOptions& options) {
  return ChatTemplate::parse(template_source).render(request, options);
}

}  // namespace g4
