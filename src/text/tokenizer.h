// The Gemma 4 tokenizer: SentencePiece-style BPE over UTF-8 code points with byte fallback
// (spec: shared/spec/gemma4-12b.md §6).
//
// Encoding, in order:
//   1. Special tokens are cut out of the raw text as whole tokens, leftmost-longest match.
//      USER_DEFINED tokens are always matched; CONTROL and UNKNOWN tokens only when
//      `parse_special` is true (llama.cpp's behaviour; HF matches every added token).
//   2. The rest is split into runs `[^\n]+|[\n]+`. A newline run that is itself a token is
//      emitted whole; everything else has ' ' replaced by U+2581 "▁" and is merged by BPE:
//      repeatedly merge the adjacent pair with the lowest merge rank (leftmost on ties).
//   3. A symbol that is not a token becomes its UTF-8 bytes as <0xXX> tokens (or <unk>).
//
// Decoding: "▁" becomes a space, byte tokens become raw bytes, CONTROL/UNKNOWN/UNUSED tokens
// are rendered as their text or skipped. Decoding is exact (HF-style, Gemma tokenizers have
// clean_up_tokenization_spaces = false) unless DecodeOptions::clean_spaces asks for llama.cpp's
// llama_detokenize clean-up (see there).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace g4 {

class GgufFile;

using TokenId = int32_t;
inline constexpr TokenId kNoToken = -1;

// Values as in GGUF `tokenizer.ggml.token_type` (llama.cpp's llama_token_type).
enum class TokenType : uint8_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};
const char* token_type_name(TokenType type);

// The vocabulary as stored in a model file. Plain data: loaders fill it, Tokenizer validates it.
struct TokenizerVocab {
  std::vector<std::string> tokens;  // id -> token text ("▁" for spaces, "<0x0A>" for bytes)
  std::vector<float> scores;        // id -> score; empty when the source has none
  std::vector<TokenType> types;     // id -> type; same size as tokens
  std::vector<std::string> merges;  // BPE merges "left right", rank = index
  TokenId bos_id = kNoToken;
  TokenId eos_id = kNoToken;
  TokenId unk_id = kNoToken;
  TokenId pad_id = kNoToken;
  bool add_bos = true;  // whether prompts should start with <bos> (the caller passes add_bos)
  std::string source;   // file the vocab came from, for error messages
};

// Ids of the Gemma 4 control tokens (spec §6 table), looked up by text in the vocabulary.
// Absent tokens (e.g. in a Gemma 3 vocabulary) are kNoToken.
struct Gemma4SpecialTokens {
  TokenId turn_start = kNoToken;           // <|turn>
  TokenId turn_end = kNoToken;             // <turn|>
  TokenId think = kNoToken;                // <|think|>
  TokenId channel_start = kNoToken;        // <|channel>
  TokenId channel_end = kNoToken;          // <channel|>
  TokenId tool_start = kNoToken;           // <|tool>
  TokenId tool_end = kNoToken;             // <tool|>
  TokenId tool_call_start = kNoToken;      // <|tool_call>
  TokenId tool_call_end = kNoToken;        // <tool_call|>
  TokenId tool_response_start = kNoToken;  // <|tool_response>
  TokenId tool_response_end = kNoToken;    // <tool_response|>
  TokenId string_quote = kNoToken;         // <|"|>
  TokenId image_start = kNoToken;          // <|image>
  TokenId image_end = kNoToken;            // <image|>
  TokenId image_placeholder = kNoToken;    // <|image|>
  TokenId audio_start = kNoToken;          // <|audio>
  TokenId audio_end = kNoToken;            // <audio|>
  TokenId audio_placeholder = kNoToken;    // <|audio|>
  TokenId video_placeholder = kNoToken;    // <|video|>
};

struct DecodeOptions {
  // Render CONTROL / UNKNOWN / UNUSED tokens as their text (llama.cpp `unparse_special`, HF
  // skip_special_tokens = false). USER_DEFINED tokens are always rendered.
  bool render_special = true;
  // llama.cpp's llama_detokenize clean-up: drop the space before . , ! ?, turn " ' " into "'"
  // and " 's" " 'm" " 're" " 've" into "'s" ... . Off by default: it loses information (text
  // does not round-trip) and the HF Gemma tokenizers do not do it. On only to reproduce
  // llama.cpp's `detok` output.
  bool clean_spaces = false;
};

class Tokenizer {
 public:
  // Validates `vocab` (sizes, special ids in range, merges naming known tokens, byte tokens)
  // and builds the lookup tables. Throws g4::Error naming vocab.source and the problem.
  explicit Tokenizer(TokenizerVocab vocab);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // tokenizer.ggml.* metadata of a GGUF file; tokenizer.ggml.model must be "gemma4".
  static Tokenizer from_gguf(const GgufFile& file);
  static TokenizerVocab vocab_from_gguf(const GgufFile& file);
  // A Hugging Face tokenizer.json with a BPE model (merges, byte_fallback). Added tokens become
  // CONTROL (special: true) or USER_DEFINED (special: false).
  static Tokenizer from_hf_json(const std::string& path);
  static TokenizerVocab vocab_from_hf_json(const std::string& path);
  // The same from JSON text already in memory; `source` names it in errors.
  static TokenizerVocab vocab_from_hf_json_text(std::string_view json_text,
                                                const std::string& source);

  // --- encoding ---
  std::vector<TokenId> encode(std::string_view text, bool add_bos, bool parse_special) const;

  // --- decoding ---
  // The bytes of one token: "▁" -> ' ', byte tokens -> that byte, CONTROL/UNKNOWN/UNUSED ->
  // their text when `special`, else "". Throws g4::Error for an id out of range.
  std::string token_to_piece(TokenId id, bool special) const;
  // Concatenated pieces. May contain invalid UTF-8 when the ids do (byte tokens); see
  // sanitize_utf8() in text/utf8.h.
  std::string decode(std::span<const TokenId> ids, const DecodeOptions& options = {}) const;

  // --- lookups ---
  size_t n_vocab() const { return vocab_.tokens.size(); }
  std::optional<TokenId> token_id(std::string_view text) const;
  const std::string& token_text(TokenId id) const;  // raw vocabulary text; throws when out of range
  TokenType token_type(TokenId id) const;           // throws when out of range
  bool is_control(TokenId id) const;                // false for ids out of range
  bool is_byte(TokenId id) const;
  // End of generation: <eos>, <turn|> and <|tool_response> (spec §6 stop set; <end_of_turn> for
  // Gemma 3 vocabularies), when present. Like llama.cpp, these are made CONTROL when the file
  // says otherwise (the converter writes <|tool_response> as USER_DEFINED): token_type() and
  // vocab().types report CONTROL for them.
  bool is_end_of_generation(TokenId id) const;
  const std::vector<TokenId>& end_of_generation_ids() const { return eog_ids_; }

  TokenId bos_id() const { return vocab_.bos_id; }
  TokenId eos_id() const { return vocab_.eos_id; }
  TokenId unk_id() const { return vocab_.unk_id; }
  TokenId pad_id() const { return vocab_.pad_id; }
  bool add_bos() const { return vocab_.add_bos; }
  const Gemma4SpecialTokens& gemma4_specials() const { return specials_; }
  const TokenizerVocab& vocab() const { return vocab_; }
  size_t n_merges() const { return vocab_.merges.size(); }

 private:
  struct Tables;  // lookup tables built from the vocab (tokenizer.cpp)
  struct BpeWorkspace;

  void mark_end_of_generation();
  void build_pieces();
  void find_gemma4_specials();
  void encode_fragment(std::string_view fragment, std::vector<TokenId>& out,
                       BpeWorkspace& work) const;
  void encode_bpe(std::string_view word, std::vector<TokenId>& out, BpeWorkspace& work) const;
  void append_byte_fallback(std::string_view bytes, std::vector<TokenId>& out,
                            bool& previous_was_unk) const;

  TokenizerVocab vocab_;
  std::unique_ptr<Tables> tables_;
  std::vector<std::string> pieces_;  // id -> decoded bytes (without the special-token rule)
  std::vector<TokenId> eog_ids_;
  Gemma4SpecialTokens specials_;
};

// Turns a stream of token ids into text that is safe to show as soon as possible: a UTF-8
// character split over several byte tokens is held back until complete, ill-formed bytes
// become U+FFFD (maximal subparts, text/utf8.h). The concatenation of every push() and the
// final flush() equals sanitize_utf8(decode(ids)) however the stream is cut. clean_spaces is
// not applied (it would need look-ahead). The tokenizer must outlive the decoder.
class StreamingDecoder {
 public:
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool render_special = true);

  // Text completed by this token (possibly empty).
  std::string push(TokenId id);
  // Whatever is still held back (an unfinished UTF-8 sequence becomes U+FFFD); resets the state.
  std::string flush();
  // Bytes currently held back.
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  bool render_special_;
  std::string pending_;
};

// llama.cpp's llama_detokenize clean_spaces passes (see DecodeOptions::clean_spaces).
std::string clean_spaces_like_llama(std::string_view text);

}  // namespace g4
