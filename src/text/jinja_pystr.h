// Python text semantics the Jinja interpreter needs: chat templates are written against Python's
// str (code points, Unicode whitespace, case mapping) and Python's str()/repr()/json.dumps output,
// so rendering byte for byte like Hugging Face means reproducing those rules.
//
// Strings are UTF-8 bytes. Ill-formed bytes survive every operation unchanged: decoding maps each
// one to a lone surrogate U+DC80+byte (Python's "surrogateescape") and encoding maps it back.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace g4::jinja {

// --- code points ---
std::vector<uint32_t> decode_utf8(std::string_view text);
void append_utf8(std::string& out, uint32_t code_point);
std::string encode_utf8(const std::vector<uint32_t>& code_points);
size_t count_code_points(std::string_view text);
// Byte offset of every code point start, plus text.size() at the end (size = count + 1).
std::vector<size_t> code_point_offsets(std::string_view text);

// --- character classes (Python str.isspace / str.isalnum ...) ---
bool is_py_space(uint32_t cp);
bool is_py_alnum(uint32_t cp);
bool is_py_alpha(uint32_t cp);
bool is_py_digit(uint32_t cp);
bool is_py_upper(uint32_t cp);
bool is_py_lower(uint32_t cp);

// --- str methods ---
// str.strip()/lstrip()/rstrip() without arguments: Unicode whitespace.
std::string_view py_strip(std::string_view text, bool left = true, bool right = true);
// str.strip(chars): removes any of the code points in `chars`.
std::string py_strip_chars(std::string_view text, std::string_view chars, bool left, bool right);
std::string py_upper(std::string_view text);
std::string py_lower(std::string_view text);
std::string py_capitalize(std::string_view text);  // first upper, rest lower
std::string py_title(std::string_view text);       // str.title()
std::string py_swapcase(std::string_view text);
// str.split(): sep empty means "runs of whitespace". max_split < 0 means unlimited.
std::vector<std::string> py_split(std::string_view text, std::string_view sep, bool whitespace,
                                  int64_t max_split);
std::vector<std::string> py_rsplit(std::string_view text, std::string_view sep, bool whitespace,
                                   int64_t max_split);
std::vector<std::string> py_splitlines(std::string_view text, bool keep_ends);
std::string py_replace(std::string_view text, std::string_view old, std::string_view replacement,
                       int64_t count);
int64_t py_count(std::string_view text, std::string_view needle);

// --- str()/repr() ---
std::string py_float_repr(double value);  // repr(float): shortest round-trip, Python's layout
std::string py_string_repr(std::string_view text);

// json.dumps string escaping: \" \\ \n \r \t \b \f, other controls as \u00XX; with ensure_ascii
// every non-ASCII code point becomes \uXXXX (surrogate pairs above U+FFFF).
void append_json_string(std::string& out, std::string_view text, bool ensure_ascii);
std::string json_float(double value);  // json.dumps(float): repr, NaN, Infinity, -Infinity

}  // namespace g4::jinja
