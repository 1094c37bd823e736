#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/error.h"
#include "text/jinja.h"
#include "text/jinja_pystr.h"

namespace g4::jinja {
namespace {

const std::filesystem::path kDataDir = std::filesystem::path(__FILE__).parent_path() / "data";

nlohmann::ordered_json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::ordered_json::parse(in);
}

TEST(JinjaReference, CasesMatchJinja2) {
  const auto doc = read_json(kDataDir / "jinja_cases.json");
  RenderOptions options;
  options.now = doc["strftime_now_epoch"].get<std::time_t>();
  int checked = 0;
  for (const auto& c : doc["cases"]) {
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    const std::string source = c["template"];
    if (c.contains("error")) {
      EXPECT_THROW(Template::parse(source, name).render(c["vars"], options), Error)
          << "jinja2: " << c["error"].get<std::string>();
    } else {
      std::string out;
      try {
        out = Template::parse(source, name).render(c["vars"], options);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "threw: " << e.what();
        continue;
      }
      EXPECT_EQ(out, c["expected"].get<std::string>()) << "template: " << source;
    }
    ++checked;
  }
  EXPECT_GT(checked, 150);
}

using json = nlohmann::ordered_json;

std::string render(std::string_view source, const json& vars = json::object(),
                   const RenderOptions& options = {}) {
  return Template::parse(source, "t").render(vars, options);
}

// The g4::Error message of rendering (or parsing) `source`, or "(no error)".
std::string error_of(std::string_view source, const json& vars = json::object(),
                     const RenderOptions& options = {}) {
  try {
    render(source, vars, options);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

#define EXPECT_ERROR(source, expected_substring)                       \
  do {                                                                 \
    const std::string g4_message_ = error_of(source);                  \
    EXPECT_NE(g4_message_.find(expected_substring), std::string::npos) \
        << "template: " << (source) << "\nerror: " << g4_message_;     \
  } while (0)

TEST(JinjaSyntaxErrors, NameTheLineAndColumn) {
  EXPECT_ERROR("line one\n{% if x %}\n  {{ 1 + }}\n{% endif %}",
               "t: line 3, column 10: unexpected '}}'");
  EXPECT_ERROR("a\nb\n{% for x in xs %}\nbody",
               "line 4, column 5: unexpected end of template, expected "
               "'else' or 'endfor' (the 'for' block opened at line 3");
  EXPECT_ERROR("{% if a %}\n{% endfor %}",
               "line 2, column 4: unexpected 'endfor', expected 'elif' or "
               "'else' or 'endif' to close the 'if' block opened at line 1");
  EXPECT_ERROR("{% endif %}",
               "line 1, column 4: unexpected 'endif' (no open block it could close)");
  EXPECT_ERROR("x\n  {{ 'unterminated }}", "line 2, column 6: unterminated string literal");
  EXPECT_ERROR("{{ a }}\n{# open comment", "line 2, column 1: missing end of comment tag");
  EXPECT_ERROR("{{ a", "line 1, column 1: unexpected end of template: missing '}}'");
  EXPECT_ERROR("{% if a %", "line 1, column 1: unexpected end of template: missing '%}'");
  EXPECT_ERROR("{{ a ? b }}", "line 1, column 6: unexpected character '?'");
  EXPECT_ERROR("{{ (1, 2] }}", "unexpected ']', expected ')'");
  EXPECT_ERROR("{{ [1, 2 }}", "line 1, column 10: unexpected '}', expected ']'");
  EXPECT_ERROR("{% set %}", "expected a name, got '%}'");
  EXPECT_ERROR("{% macro m(a=1, b) %}{% endmacro %}", "non-default argument 'b' follows default");
  EXPECT_ERROR("{{ f(a=1, 2) }}", "positional argument follows keyword argument");
  EXPECT_ERROR("{{ x is defined is string }}", "cannot chain multiple tests");
  EXPECT_ERROR("{% raw %}never closed", "missing end of raw directive");
  EXPECT_ERROR("{{ '\\x4' }}", "truncated \\x escape");
  EXPECT_ERROR("{{ 99999999999999999999 }}", "integer literal too large");
}

TEST(JinjaSyntaxErrors, UnsupportedConstructsSaySo) {
  EXPECT_ERROR("{% include 'a' %}", "line 1, column 4: the 'include' tag is not supported");
  EXPECT_ERROR("{% extends 'a' %}", "the 'extends' tag is not supported");
  EXPECT_ERROR("{% block b %}{% endblock %}", "the 'block' tag is not supported");
  EXPECT_ERROR("{% import 'x' as y %}", "the 'import' tag is not supported");
  EXPECT_ERROR("{% do x %}", "the 'do' tag is not supported");
  EXPECT_ERROR("{% frob %}", "unknown tag 'frob'");
  EXPECT_ERROR("{% for x in y recursive %}{% endfor %}", "recursive for loops are not supported");
  EXPECT_ERROR("{{ f(*args) }}", "*args and **kwargs in calls are not supported");
  EXPECT_ERROR("{% break %}", "'break' outside of a loop");
  EXPECT_ERROR("{% for x in y %}{% macro m() %}{% continue %}{% endmacro %}{% endfor %}",
               "'continue' outside of a loop");
  EXPECT_ERROR("{{ x|groupby('a') }}", "the filter 'groupby' is not supported");
  EXPECT_ERROR("{{ a[1:2, 3] }}", "multi-dimensional slices are not supported");
}

TEST(JinjaRuntimeErrors, NameTheLineOfTheFailingExpression) {
  EXPECT_NE(error_of("ok\n{% for m in messages %}\n{{ m.content.missing.deeper }}{% endfor %}",
                     json::parse(R"({"messages": [{"content": {}}]})"))
                .find("line 3, column 21: 'dict object' has no attribute 'missing'"),
            std::string::npos);
  EXPECT_ERROR("\n\n   {{ undefined_thing.attr }}",
               "line 3, column 22: 'undefined_thing' is undefined");
  EXPECT_ERROR("{% macro m(x) %}\n{{ x + 'a' }}{% endmacro %}{{ m(1) }}",
               "line 2, column 6: unsupported operand type(s) for +: 'int' and 'str'");
  EXPECT_ERROR("{{ raise_exception('Only user and assistant roles are supported!') }}",
               "raise_exception: Only user and assistant roles are supported!");
  EXPECT_ERROR("{{ [1, 2].append(3) }}", "access to attribute 'append' of 'list' object is unsafe");
  EXPECT_ERROR("{{ 'abc'.nosuchmethod() }}", "'str object' has no attribute 'nosuchmethod'");
  EXPECT_ERROR("{{ 'x'|upper(1) }}", "upper() takes at most 0 argument(s)");
  EXPECT_ERROR("{{ 'x'|replace('a', 'b', bogus=1) }}", "unexpected keyword argument 'bogus'");
  EXPECT_ERROR("{{ 1 is odd(2) }}", "test 'odd' takes no arguments");
  EXPECT_ERROR("{% set a, b = 1 %}", "'int' object is not iterable");
  EXPECT_ERROR("{{ 9223372036854775807 + 1 }}", "integer overflow");
  EXPECT_ERROR("{{ 2 ** 64 }}", "integer overflow");
  EXPECT_ERROR("{{ 'a' * 'b' }}", "unsupported operand type(s) for *");
  EXPECT_ERROR("{{ {[1]: 2} }}", "unhashable type: 'list'");
  EXPECT_ERROR("{{ 'x'[::0] }}", "slice step cannot be zero");
  EXPECT_ERROR("{{ '%d' % 'x' }}", "%d format: a real number is required");
  EXPECT_ERROR("{{ '%s %s' % ('x',) }}", "not enough arguments for format string");
}

TEST(JinjaUndefined, BehavesLikeJinja2DefaultUndefined) {
  EXPECT_EQ(
      render("[{{ nope }}][{{ nope ~ 'x' }}][{{ nope|length }}][{% for a in nope %}x{% endfor %}]"),
      "[][x][0][]");
  EXPECT_EQ(
      render("{{ nope is defined }} {{ nope is undefined }} {{ nope == nope }} {{ not nope }}"),
      "False True True True");
  EXPECT_EQ(
      render(
          "{{ d.missing is defined }} {{ d['missing'] is defined }} {{ d.missing|default('z') }}",
          json{{"d", json::object()}}),
      "False False z");
  EXPECT_EQ(render("{{ n.attr is defined }}", json{{"n", nullptr}}), "False");  // None.attr
  EXPECT_ERROR("{{ nope.attr }}", "'nope' is undefined");
  EXPECT_ERROR("{{ nope < 1 }}", "'nope' is undefined");
  EXPECT_ERROR("{{ -nope }}", "'nope' is undefined");
}

TEST(JinjaLimits, DeepNestingIsRejectedNotACrash) {
  const auto nested = [](std::string_view open, std::string_view middle, std::string_view close,
                         int depth) {
    std::string s;
    for (int i = 0; i < depth; ++i) s += open;
    s += middle;
    for (int i = 0; i < depth; ++i) s += close;
    return s;
  };
  EXPECT_ERROR(nested("{{ ", "", "", 1) + nested("(", "1", ")", 20000) + " }}",
               "nested too deeply");
  EXPECT_ERROR(nested("{{ ", "", "", 1) + nested("[", "1", "]", 20000) + " }}",
               "nested too deeply");
  EXPECT_ERROR("{{ " + nested("not ", "1", "", 20000) + " }}", "nested too deeply");
  EXPECT_ERROR("{{ " + nested("-", "1", "", 20000) + " }}", "nested too deeply");
  EXPECT_ERROR("{{ 1" + nested("", "", " + 1", 20000) + " }}", "nested too deeply");
  EXPECT_ERROR("{{ 1" + nested("", "", "|string", 20000) + " }}", "nested too deeply");
  EXPECT_ERROR("{{ a" + nested("", "", ".b", 20000) + " }}", "nested too deeply");
  EXPECT_ERROR(nested("{% if true %}", "x", "{% endif %}", 20000), "nested too deeply");
  EXPECT_ERROR(nested("{% for i in [1] %}", "x", "{% endfor %}", 20000), "nested too deeply");
  // Reasonable depth still works.
  EXPECT_EQ(render(nested("{% if true %}", "x", "{% endif %}", 30)), "x");
  EXPECT_EQ(render("{{ " + nested("(", "1", ")", 30) + " }}"), "1");
}

TEST(JinjaLimits, RunawayTemplatesStopWithAClearError) {
  EXPECT_ERROR("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
               "maximum macro call depth (100) exceeded in macro 'f'");
  EXPECT_ERROR("{{ range(1000000000)|length }}", "exceeds the limit of 1000000");
  // Step budget: the default (20M) is exercised by LimitsAreConfigurable's defaults; a smaller
  // one keeps this test quick.
  RenderOptions budget;
  budget.limits.max_steps = 200000;
  EXPECT_NE(error_of("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                     "{% endfor %}",
                     json::object(), budget)
                .find("exceeded the step limit (200000"),
            std::string::npos);
  EXPECT_NE(error_of("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
                     "{% endmacro %}{{ f(60) }}",
                     json::object(), budget)
                .find("exceeded the step limit"),
            std::string::npos);
  EXPECT_ERROR(
      "{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(100) %}"
      "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
      "exceeds the limit of 16777216 bytes");
  EXPECT_ERROR("{{ 'x' * 100000000 }}", "exceeds the limit of 16777216 bytes");
  EXPECT_ERROR("{{ [0] * 100000000 }}", "exceeds the limit of 1000000");
  EXPECT_ERROR("{% for i in range(200000) %}{{ 'y' * 100 }}{% endfor %}", "exceeds the limit");
  EXPECT_ERROR(
      "{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = [ns.l] %}"
      "{% endfor %}",
      "nested deeper than 256 levels");
  // A namespace that contains itself cannot be printed forever.
  EXPECT_ERROR("{% set ns = namespace() %}{% set ns.self = ns %}{{ ns }}", "nested too deeply");
  // Deeply nested input data is refused up front.
  json deep = 1;
  for (int i = 0; i < 1000; ++i) deep = json::array({deep});
  EXPECT_NE(error_of("{{ x }}", json{{"x", deep}}).find("nested deeper than 256"),
            std::string::npos);
}

TEST(JinjaLimits, LimitsAreConfigurable) {
  RenderOptions tight;
  tight.limits.max_steps = 50;
  EXPECT_NE(error_of("{% for i in range(100) %}{{ i }}{% endfor %}", json::object(), tight)
                .find("step limit (50"),
            std::string::npos);
  tight.limits = RenderLimits{};
  tight.limits.max_output_bytes = 10;
  EXPECT_NE(error_of("{{ 'abcdefghijk' }}", json::object(), tight).find("limit of 10 bytes"),
            std::string::npos);
  tight.limits = RenderLimits{};
  tight.limits.max_call_depth = 3;
  EXPECT_NE(error_of("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(0) }}", json::object(), tight)
                .find("maximum macro call depth (3)"),
            std::string::npos);
}

TEST(JinjaRender, VariablesMustBeAnObject) {
  EXPECT_EQ(Template::parse("x").render(nullptr), "x");
  EXPECT_THROW(Template::parse("x").render(json::array()), Error);
  EXPECT_THROW(Template().render(json::object()), Error);  // never parsed
}

TEST(JinjaRender, ConcurrentRendersOfOneTemplate) {
  const Template tmpl = Template::parse(
      "{% set ns = namespace(total=0) %}{% for i in range(n) %}{% set ns.total = ns.total + i %}"
      "{% endfor %}{{ ns.total }}");
  std::vector<std::string> results(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      results[static_cast<size_t>(t)] = tmpl.render(json{{"n", 1000 + t}});
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < 8; ++t) {
    const int64_t n = 1000 + t;
    EXPECT_EQ(results[static_cast<size_t>(t)], std::to_string(n * (n - 1) / 2));
  }
}

TEST(JinjaRender, InputKeyOrderIsKept) {
  const json vars = json::parse(R"({"d": {"zeta": 1, "alpha": 2, "mid": 3}})");
  EXPECT_EQ(render("{% for k in d %}{{ k }},{% endfor %}{{ d|tojson }}", vars),
            "zeta,alpha,mid,{\"zeta\": 1, \"alpha\": 2, \"mid\": 3}");
}

TEST(JinjaPythonText, FloatRepr) {
  const std::pair<double, const char*> cases[] = {
      {1.0, "1.0"},        {0.1, "0.1"},       {1e16, "1e+16"}, {1e15, "1000000000000000.0"},
      {1.5e-5, "1.5e-05"}, {0.0001, "0.0001"}, {-2.5, "-2.5"},  {123456789.125, "123456789.125"},
      {1e300, "1e+300"},   {5e-324, "5e-324"}, {-0.0, "-0.0"},  {1.0 / 3, "0.3333333333333333"}};
  for (const auto& [value, expected] : cases) EXPECT_EQ(py_float_repr(value), expected);
}

TEST(JinjaPythonText, StripSplitAndCase) {
  EXPECT_EQ(py_strip("\u3000 x \t\n\u00a0"), "x");
  EXPECT_EQ(py_split("a  b ", "", true, -1), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(py_rsplit("a,b,c", ",", false, 1), (std::vector<std::string>{"a,b", "c"}));
  EXPECT_EQ(py_upper("straße ǆ é"), "STRASSE Ǆ É");
  EXPECT_EQ(py_lower("ÀÉÎ"), "àéî");
  EXPECT_EQ(count_code_points("żółw🙂"), 5u);
  // Ill-formed bytes survive decode/encode unchanged.
  const std::string bad = "a\xff\xc3(\xe2\x82";
  EXPECT_EQ(encode_utf8(decode_utf8(bad)), bad);
  EXPECT_EQ(py_string_repr("it's \"q\"\n"), "'it\\'s \"q\"\\n'");
}

}  // namespace
}  // namespace g4::jinja
