// Speech to text for /v1/audio/transcriptions and /v1/audio/translations: Google's documented
// Gemma 4 prompts, 30-second segments, and the OpenAI response formats.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "server/json_fields.h"

namespace g4::server {

// Gemma 4 takes at most 30 s of audio per clip (ai.google.dev Gemma 4 audio guide: "Audio supports
// a maximum length of 30 seconds"); longer uploads are transcribed segment by segment.
constexpr double kTranscriptionSegmentSeconds = 30.0;

// The instruction for automatic speech recognition, in Google's wording for Gemma 4 (model card,
// "Audio prompt templates" / ai.google.dev/gemma/docs/capabilities/audio):
//   Transcribe the following speech segment in {LANGUAGE} into {LANGUAGE} text.
//
//   Follow these specific instructions for formatting the answer:
//   * Only output the transcription, with no newlines.
//   * When transcribing numbers, write the digits, i.e. write 1.7 and not one point seven, and
//     write 3 instead of three.
// Without a language, "in its original language" (the wording of Google's Gemma 4 audio notebook).
std::string transcription_instruction(const std::string& language);

// The speech translation instruction (same sources):
//   Transcribe the following speech segment in {SOURCE_LANGUAGE}, then translate it into
//   {TARGET_LANGUAGE}. When formatting the answer, first output the transcription in
//   {SOURCE_LANGUAGE}, then one newline, then output the string '{TARGET_LANGUAGE}: ', then the
//   translation in {TARGET_LANGUAGE}.
std::string translation_instruction(const std::string& source_language, const std::string& target_language);

// The translation part of such an answer: what follows "{target}: " on a line of its own (the
// whole text when the model did not follow the format).
std::string translation_from_answer(const std::string& answer, const std::string& target_language);

// "en" -> "English" (ISO 639-1); a longer value is taken as a language name; "" stays "".
// Throws a 400 ApiError for an unknown two- or three-letter code.
std::string language_name(const std::string& code_or_name);
// The reverse, for verbose_json ("English" -> "english" as OpenAI reports it).
std::string language_label(const std::string& name);

// Mono 16 kHz float samples -> a WAV file (IEEE float, lossless) in memory.
std::vector<uint8_t> wav_float32(const float* samples, size_t count, int sample_rate);

struct TranscriptSegment {
  double start = 0, end = 0;  // seconds
  std::string text;
};

// "00:00:01,500" (SRT) or "00:00:01.500" (VTT).
std::string subtitle_time(double seconds, char decimal_separator);
std::string format_srt(const std::vector<TranscriptSegment>& segments);
std::string format_vtt(const std::vector<TranscriptSegment>& segments);
Json verbose_json(const std::string& task, const std::string& language, double duration,
                  const std::vector<TranscriptSegment>& segments, const Json& usage);

}  // namespace g4::server
