#include "server/transcription.h"

#include <cmath>
#include <cstring>
#include <utility>

#include "core/error.h"
#include "server/api_error.h"

namespace g4::server {
namespace {

const std::pair<const char*, const char*> kLanguages[] = {
    {"af", "Afrikaans"}, {"ar", "Arabic"},     {"bg", "Bulgarian"},  {"bn", "Bengali"},    {"ca", "Catalan"},
    {"cs", "Czech"},     {"cy", "Welsh"},      {"da", "Danish"},     {"de", "German"},     {"el", "Greek"},
    {"en", "English"},   {"es", "Spanish"},    {"et", "Estonian"},   {"fa", "Persian"},    {"fi", "Finnish"},
    {"fr", "French"},    {"ga", "Irish"},      {"gl", "Galician"},   {"gu", "Gujarati"},   {"he", "Hebrew"},
    {"hi", "Hindi"},     {"hr", "Croatian"},   {"hu", "Hungarian"},  {"hy", "Armenian"},   {"id", "Indonesian"},
    {"is", "Icelandic"}, {"it", "Italian"},    {"ja", "Japanese"},   {"ka", "Georgian"},   {"kk", "Kazakh"},
    {"kn", "Kannada"},   {"ko", "Korean"},     {"lt", "Lithuanian"}, {"lv", "Latvian"},    {"mk", "Macedonian"},
    {"ml", "Malayalam"}, {"mr", "Marathi"},    {"ms", "Malay"},      {"mt", "Maltese"},    {"nl", "Dutch"},
    {"no", "Norwegian"}, {"pa", "Punjabi"},    {"pl", "Polish"},     {"pt", "Portuguese"}, {"ro", "Romanian"},
    {"ru", "Russian"},   {"sk", "Slovak"},     {"sl", "Slovenian"},  {"sq", "Albanian"},   {"sr", "Serbian"},
    {"sv", "Swedish"},   {"sw", "Swahili"},    {"ta", "Tamil"},      {"te", "Telugu"},     {"th", "Thai"},
    {"tl", "Tagalog"},   {"tr", "Turkish"},    {"uk", "Ukrainian"},  {"ur", "Urdu"},       {"uz", "Uzbek"},
    {"vi", "Vietnamese"}, {"zh", "Chinese"},
};

const char* kFormattingRules =
    "Follow these specific instructions for formatting the answer:\n"
    "* Only output the transcription, with no newlines.\n"
    "* When transcribing numbers, write the digits, i.e. write 1.7 and not one point seven, and write 3 instead "
    "of three.";

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
}
void put_u16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(uint8_t(v));
  out.push_back(uint8_t(v >> 8));
}

}  // namespace

std::string transcription_instruction(const std::string& language) {
  if (language.empty())
    return std::string("Transcribe the following speech segment in its original language.\n\n") + kFormattingRules;
  return "Transcribe the following speech segment in " + language + " into " + language + " text.\n\n" +
         kFormattingRules;
}

std::string translation_instruction(const std::string& source, const std::string& target) {
  const std::string from = source.empty() ? "its original language" : source;
  return "Transcribe the following speech segment in " + from + ", then translate it into " + target +
         ". When formatting the answer, first output the transcription in " + from +
         ", then one newline, then output the string '" + target + ": ', then the translation in " + target + ".";
}

std::string translation_from_answer(const std::string& answer, const std::string& target) {
  const std::string marker = target + ": ";
  size_t at = answer.rfind("\n" + marker);
  if (at != std::string::npos) return answer.substr(at + 1 + marker.size());
  if (answer.rfind(marker, 0) == 0) return answer.substr(marker.size());
  return answer;
}

std::string language_name(const std::string& code) {
  if (code.empty()) return "";
  std::string lower;
  for (char c : code) lower += char(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& [iso, name] : kLanguages)
    if (lower == iso) return name;
  if (code.size() <= 3)
    throw bad_request(cat("unknown language code '", code, "' (use an ISO 639-1 code such as en, or a name)"),
                      "language");
  return code;
}

std::string language_label(const std::string& name) {
  std::string lower;
  for (char c : name) lower += char(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

std::vector<uint8_t> wav_float32(const float* samples, size_t count, int sample_rate) {
  std::vector<uint8_t> out;
  const uint32_t data_bytes = uint32_t(count * sizeof(float));
  out.insert(out.end(), {'R', 'I', 'F', 'F'});
  put_u32(out, 36 + data_bytes);
  out.insert(out.end(), {'W', 'A', 'V', 'E', 'f', 'm', 't', ' '});
  put_u32(out, 16);
  put_u16(out, 3);  // WAVE_FORMAT_IEEE_FLOAT
  put_u16(out, 1);  // mono
  put_u32(out, uint32_t(sample_rate));
  put_u32(out, uint32_t(sample_rate) * 4);
  put_u16(out, 4);
  put_u16(out, 32);
  out.insert(out.end(), {'d', 'a', 't', 'a'});
  put_u32(out, data_bytes);
  const size_t at = out.size();
  out.resize(at + data_bytes);
  std::memcpy(out.data() + at, samples, data_bytes);  // little-endian hosts (x86-64, ARM64)
  return out;
}

std::string subtitle_time(double seconds, char decimal_separator) {
  const int64_t ms = int64_t(std::llround(std::max(0.0, seconds) * 1000));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld%c%03lld", (long long)(ms / 3600000),
                (long long)(ms / 60000 % 60), (long long)(ms / 1000 % 60), decimal_separator, (long long)(ms % 1000));
  return buf;
}

std::string format_srt(const std::vector<TranscriptSegment>& segments) {
  std::string out;
  int n = 0;
  for (const TranscriptSegment& s : segments) {
    if (n) out += "\n";
    out += std::to_string(++n) + "\n" + subtitle_time(s.start, ',') + " --> " + subtitle_time(s.end, ',') + "\n" +
           s.text + "\n";
  }
  return out;
}

std::string format_vtt(const std::vector<TranscriptSegment>& segments) {
  std::string out = "WEBVTT\n";
  for (const TranscriptSegment& s : segments)
    out += "\n" + subtitle_time(s.start, '.') + " --> " + subtitle_time(s.end, '.') + "\n" + s.text + "\n";
  return out;
}

Json verbose_json(const std::string& task, const std::string& language, double duration,
                  const std::vector<TranscriptSegment>& segments, const Json& usage) {
  Json out;
  out["task"] = task;
  out["language"] = language.empty() ? "unknown" : language_label(language);
  out["duration"] = duration;
  std::string text;
  Json segs = Json::array();
  for (size_t i = 0; i < segments.size(); ++i) {
    if (!text.empty() && !segments[i].text.empty()) text += " ";
    text += segments[i].text;
    Json s;
    s["id"] = i;
    s["seek"] = int64_t(segments[i].start * 100);  // centiseconds, as Whisper reports it
    s["start"] = segments[i].start;
    s["end"] = segments[i].end;
    s["text"] = segments[i].text;
    segs.push_back(s);
  }
  out["text"] = text;
  out["segments"] = segs;
  out["usage"] = usage;
  return out;
}

}  // namespace g4::server
