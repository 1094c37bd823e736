// Tokenizer construction, encoding (special-token split + BPE) and decoding. The loaders are in
// tokenizer_gguf.cpp and tokenizer_hf_json.cpp.
#include "text/tokenizer.h"

#include <algorithm>
#include <array>
#include <climits>
#include <functional>
#include <unordered_map>

#include "core/error.h"
#include "text/utf8.h"

namespace g4 {

namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581 "▁", SentencePiece's space

// Heterogeneous lookup so that string_view keys need no allocation.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

uint64_t pair_key(TokenId left, TokenId right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// "<0x41>" -> 0x41; nullopt for anything else.
std::optional<uint8_t> parse_byte_token(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return std::nullopt;
  const int hi = hex_digit(text[3]);
  const int lo = hex_digit(text[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<uint8_t>(hi * 16 + lo);
}

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (true) {
    const size_t hit = text.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(text.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
  out.append(text.substr(pos));
  return out;
}

bool is_special_type(TokenType type) {
  return type == TokenType::Control || type == TokenType::Unknown || type == TokenType::Unused;
}

// Names whose tokens end generation (spec §6 stop set; <end_of_turn> is Gemma 2/3's turn end).
constexpr std::string_view kEndOfGenerationNames[] = {"<turn|>", "<|tool_response>",
                                                      "<end_of_turn>"};

}  // namespace

const char* token_type_name(TokenType type) {
  switch (type) {
    case TokenType::Undefined:
      return "UNDEFINED";
    case TokenType::Normal:
      return "NORMAL";
    case TokenType::Unknown:
      return "UNKNOWN";
    case TokenType::Control:
      return "CONTROL";
    case TokenType::UserDefined:
      return "USER_DEFINED";
    case TokenType::Unused:
      return "UNUSED";
    case TokenType::Byte:
      return "BYTE";
  }
  return "?";
}

// ------------------------------------------------------------------------------------------
// Lookup tables

// Byte trie over the texts of the tokens that are cut out of raw text as a whole
// (USER_DEFINED, CONTROL, UNKNOWN). Edges live in one hash map keyed by (node, byte).
class SpecialTokenTrie {
 public:
  void insert(std::string_view text, TokenId id) {
    if (text.empty()) return;
    if (terminal_.empty()) terminal_.push_back(kNoToken);  // root
    first_byte_[static_cast<uint8_t>(text[0])] = true;
    uint32_t node = 0;
    for (char c : text) {
      const uint64_t key = edge_key(node, c);
      auto it = edges_.find(key);
      if (it == edges_.end()) {
        const auto child = static_cast<uint32_t>(terminal_.size());
        terminal_.push_back(kNoToken);
        it = edges_.emplace(key, child).first;
      }
      node = it->second;
    }
    if (terminal_[node] == kNoToken) terminal_[node] = id;  // first id wins for duplicates
  }

  bool may_start(char c) const { return first_byte_[static_cast<uint8_t>(c)]; }

  // Longest token starting at text[pos] that `accept` allows; returns {id, length}.
  template <class Accept>
  std::pair<TokenId, size_t> longest_match(std::string_view text, size_t pos,
                                           const Accept& accept) const {
    std::pair<TokenId, size_t> best{kNoToken, 0};
    uint32_t node = 0;
    for (size_t i = pos; i < text.size(); ++i) {
      const auto it = edges_.find(edge_key(node, text[i]));
      if (it == edges_.end()) break;
      node = it->second;
      const TokenId id = terminal_[node];
      if (id != kNoToken && accept(id)) best = {id, i + 1 - pos};
    }
    return best;
  }

 private:
  static uint64_t edge_key(uint32_t node, char c) {
    return (static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(c);
  }
  std::unordered_map<uint64_t, uint32_t> edges_;
  std::vector<TokenId> terminal_;
  std::array<bool, 256> first_byte_{};
};

struct MergeEntry {
  int32_t rank;
  TokenId result;
};

struct Tokenizer::Tables {
  std::unordered_map<std::string, TokenId, StringHash, std::equal_to<>> token_to_id;
  std::array<TokenId, 128> ascii_ids;                   // single ASCII character tokens
  std::unordered_map<uint32_t, TokenId> codepoint_ids;  // single non-ASCII code point tokens
  std::unordered_map<uint64_t, MergeEntry> merges;      // (left, right) -> rank, merged token
  std::array<TokenId, 256> byte_ids;                    // <0xXX> tokens
  SpecialTokenTrie specials;

  void index_tokens(const TokenizerVocab& vocab);
  void index_special_tokens(const TokenizerVocab& vocab);
  void index_merges(const TokenizerVocab& vocab);

  Tables() {
    ascii_ids.fill(kNoToken);
    byte_ids.fill(kNoToken);
  }

  std::optional<TokenId> find(std::string_view text) const {
    const auto it = token_to_id.find(text);
    if (it == token_to_id.end()) return std::nullopt;
    return it->second;
  }

  TokenId symbol_id(std::string_view symbol, const Utf8Step& step) const {
    if (step.status != Utf8Status::Valid) return kNoToken;
    if (step.length == 1) return ascii_ids[static_cast<uint8_t>(symbol[0])];
    const auto it = codepoint_ids.find(step.codepoint);
    return it == codepoint_ids.end() ? kNoToken : it->second;
  }
};

// Scratch space for BPE, reused for every word of one encode() call.
struct Tokenizer::BpeWorkspace {
  struct Symbol {
    uint32_t start;   // byte offset in the word
    uint32_t length;  // 0 once merged into its left neighbour
    TokenId id;       // kNoToken when the text is not a token
    int32_t prev;
    int32_t next;
  };
  struct Candidate {
    int32_t rank;
    int32_t left;  // symbol index; symbols keep text order, so a lower index is further left
    int32_t right;
    TokenId left_id;
    TokenId right_id;
    TokenId result;
  };
  // Min-heap order: lowest rank first, then leftmost.
  static bool after(const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
  }

  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
  std::string normalized;
};

// ------------------------------------------------------------------------------------------
// Construction

namespace {

void validate_special_id(const TokenizerVocab& vocab, TokenId id, const char* what) {
  if (id == kNoToken) return;
  if (id < 0 || static_cast<size_t>(id) >= vocab.tokens.size())
    fail(vocab.source, ": ", what, " token id ", id, " is out of range (vocabulary has ",
         vocab.tokens.size(), " tokens)");
}

}  // namespace

Tokenizer::Tokenizer(TokenizerVocab vocab) : vocab_(std::move(vocab)), tables_(new Tables) {
  const std::string& source = vocab_.source;
  const size_t n = vocab_.tokens.size();
  if (n == 0) fail(source, ": the vocabulary is empty");
  if (n > static_cast<size_t>(INT32_MAX)) fail(source, ": too many tokens (", n, ")");
  if (vocab_.types.size() != n)
    fail(source, ": ", vocab_.types.size(), " token types for ", n, " tokens");
  if (!vocab_.scores.empty() && vocab_.scores.size() != n)
    fail(source, ": ", vocab_.scores.size(), " token scores for ", n, " tokens");
  validate_special_id(vocab_, vocab_.bos_id, "BOS");
  validate_special_id(vocab_, vocab_.eos_id, "EOS");
  validate_special_id(vocab_, vocab_.unk_id, "UNK");
  validate_special_id(vocab_, vocab_.pad_id, "PAD");

  tables_->index_tokens(vocab_);
  mark_end_of_generation();
  tables_->index_special_tokens(vocab_);
  tables_->index_merges(vocab_);
  build_pieces();
  find_gemma4_specials();
}

void Tokenizer::Tables::index_tokens(const TokenizerVocab& vocab) {
  token_to_id.reserve(vocab.tokens.size());
  for (size_t i = 0; i < vocab.tokens.size(); ++i) {
    const auto id = static_cast<TokenId>(i);
    const std::string& text = vocab.tokens[i];
    const TokenType type = vocab.types[i];
    if (static_cast<uint8_t>(type) > static_cast<uint8_t>(TokenType::Byte))
      fail(vocab.source, ": token ", id, " has invalid type ", int(type));
    token_to_id.emplace(text, id);  // first id wins when a text repeats
    if (type == TokenType::Byte) {
      const std::optional<uint8_t> byte = parse_byte_token(text);
      if (!byte) fail(vocab.source, ": BYTE token ", id, " is '", text, "', expected <0xXX>");
      if (byte_ids[*byte] == kNoToken) byte_ids[*byte] = id;
      continue;
    }
    // Single-character tokens are the starting symbols of BPE.
    if (text.empty()) continue;
    const Utf8Step step = utf8_step(text, 0);
    if (step.status != Utf8Status::Valid || step.length != text.size()) continue;
    if (step.length == 1) {
      if (ascii_ids[step.codepoint] == kNoToken) ascii_ids[step.codepoint] = id;
    } else {
      codepoint_ids.emplace(step.codepoint, id);
    }
  }
}

void Tokenizer::Tables::index_special_tokens(const TokenizerVocab& vocab) {
  for (size_t i = 0; i < vocab.tokens.size(); ++i) {
    const TokenType type = vocab.types[i];
    if (type == TokenType::UserDefined || type == TokenType::Control || type == TokenType::Unknown)
      specials.insert(vocab.tokens[i], static_cast<TokenId>(i));
  }
}

// Merges are "left right". The split is at the first space that leaves two known tokens, so a
// token text containing a space cannot make it ambiguous.
void Tokenizer::Tables::index_merges(const TokenizerVocab& vocab) {
  merges.reserve(vocab.merges.size());
  std::string joined;
  for (size_t rank = 0; rank < vocab.merges.size(); ++rank) {
    const std::string_view merge = vocab.merges[rank];
    std::optional<TokenId> left, right;
    size_t split = std::string_view::npos;
    for (size_t p = merge.find(' ', 1); p != std::string_view::npos; p = merge.find(' ', p + 1)) {
      left = find(merge.substr(0, p));
      right = find(merge.substr(p + 1));
      if (left && right) {
        split = p;
        break;
      }
    }
    if (split == std::string_view::npos) {
      const size_t p = merge.find(' ', 1);
      if (p == std::string_view::npos || p + 1 >= merge.size())
        fail(vocab.source, ": merge #", rank, " '", merge,
             "' is not two tokens separated by a space");
      const std::string_view bad =
          find(merge.substr(0, p)) ? merge.substr(p + 1) : merge.substr(0, p);
      fail(vocab.source, ": merge #", rank, " '", merge, "' names unknown token '", bad, "'");
    }
    joined.assign(merge.substr(0, split));
    joined.append(merge.substr(split + 1));
    const std::optional<TokenId> result = find(joined);
    if (!result)
      fail(vocab.source, ": merge #", rank, " '", merge, "' produces '", joined,
           "', which is not in the vocabulary");
    // A repeated pair keeps its first (best) rank.
    merges.emplace(pair_key(*left, *right), MergeEntry{static_cast<int32_t>(rank), *result});
  }
}

// End-of-generation tokens. Like llama.cpp, an EOG token that is not CONTROL (the converter
// writes <|tool_response> as USER_DEFINED) is made CONTROL, so that parse_special = false does
// not match it and render_special = false hides it (gemma4-tiny README, "llama.cpp behaviour
// worth knowing").
void Tokenizer::mark_end_of_generation() {
  if (vocab_.eos_id != kNoToken) eog_ids_.push_back(vocab_.eos_id);
  for (std::string_view name : kEndOfGenerationNames) {
    const std::optional<TokenId> id = tables_->find(name);
    if (!id || std::find(eog_ids_.begin(), eog_ids_.end(), *id) != eog_ids_.end()) continue;
    eog_ids_.push_back(*id);
    vocab_.types[*id] = TokenType::Control;
  }
}

void Tokenizer::build_pieces() {
  pieces_.resize(vocab_.tokens.size());
  for (size_t i = 0; i < vocab_.tokens.size(); ++i) {
    const std::string& text = vocab_.tokens[i];
    if (vocab_.types[i] == TokenType::Byte) {
      pieces_[i] = std::string(1, static_cast<char>(*parse_byte_token(text)));
    } else if (is_special_type(vocab_.types[i])) {
      pieces_[i] = text;
    } else {
      pieces_[i] = replace_all(text, kSpaceMarker, " ");
    }
  }
}

void Tokenizer::find_gemma4_specials() {
  const auto lookup = [&](std::string_view name) { return tables_->find(name).value_or(kNoToken); };
  Gemma4SpecialTokens& s = specials_;
  s.turn_start = lookup("<|turn>");
  s.turn_end = lookup("<turn|>");
  s.think = lookup("<|think|>");
  s.channel_start = lookup("<|channel>");
  s.channel_end = lookup("<channel|>");
  s.tool_start = lookup("<|tool>");
  s.tool_end = lookup("<tool|>");
  s.tool_call_start = lookup("<|tool_call>");
  s.tool_call_end = lookup("<tool_call|>");
  s.tool_response_start = lookup("<|tool_response>");
  s.tool_response_end = lookup("<tool_response|>");
  s.string_quote = lookup("<|\"|>");
  s.image_start = lookup("<|image>");
  s.image_end = lookup("<image|>");
  s.image_placeholder = lookup("<|image|>");
  s.audio_start = lookup("<|audio>");
  s.audio_end = lookup("<audio|>");
  s.audio_placeholder = lookup("<|audio|>");
  s.video_placeholder = lookup("<|video|>");
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

// ------------------------------------------------------------------------------------------
// Encoding

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool add_bos,
                                       bool parse_special) const {
  // Symbol indices in encode_bpe are int32.
  if (text.size() > static_cast<size_t>(INT32_MAX))
    fail("cannot tokenize ", text.size(), " bytes at once (limit ", INT32_MAX, ")");
  std::vector<TokenId> out;
  out.reserve(text.size() / 3 + 2);
  if (add_bos && vocab_.bos_id != kNoToken) out.push_back(vocab_.bos_id);

  const auto accept = [&](TokenId id) {
    return parse_special || vocab_.types[id] == TokenType::UserDefined;
  };
  BpeWorkspace work;
  size_t fragment_start = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    if (tables_->specials.may_start(text[pos])) {
      const auto [id, length] = tables_->specials.longest_match(text, pos, accept);
      if (id != kNoToken) {
        encode_fragment(text.substr(fragment_start, pos - fragment_start), out, work);
        out.push_back(id);
        pos += length;
        fragment_start = pos;
        continue;
      }
    }
    ++pos;
  }
  encode_fragment(text.substr(fragment_start), out, work);
  return out;
}

// Pre-tokenizer of llama.cpp's gemma4 type: runs `[^\n]+|[\n]+`; a newline run that is a token
// is emitted whole (spec §6).
void Tokenizer::encode_fragment(std::string_view fragment, std::vector<TokenId>& out,
                                BpeWorkspace& work) const {
  size_t pos = 0;
  while (pos < fragment.size()) {
    const bool newlines = fragment[pos] == '\n';
    size_t end = newlines ? fragment.find_first_not_of('\n', pos) : fragment.find('\n', pos);
    if (end == std::string_view::npos) end = fragment.size();
    const std::string_view run = fragment.substr(pos, end - pos);
    if (newlines) {
      if (const std::optional<TokenId> id = tables_->find(run)) {
        out.push_back(*id);
      } else {
        encode_bpe(run, out, work);
      }
    } else {
      // SentencePiece normalization: ' ' -> U+2581.
      work.normalized.clear();
      for (char c : run) {
        if (c == ' ') {
          work.normalized.append(kSpaceMarker);
        } else {
          work.normalized.push_back(c);
        }
      }
      encode_bpe(work.normalized, out, work);
    }
    pos = end;
  }
}

// BPE by merge rank: a linked list of symbols and a heap of adjacent pairs that have a merge.
// Stale heap entries (a side already merged away) are skipped when popped. O(n log n).
void Tokenizer::encode_bpe(std::string_view word, std::vector<TokenId>& out,
                           BpeWorkspace& work) const {
  using Symbol = BpeWorkspace::Symbol;
  using Candidate = BpeWorkspace::Candidate;
  const Tables& t = *tables_;
  auto& symbols = work.symbols;
  auto& heap = work.heap;
  symbols.clear();
  heap.clear();

  for (size_t pos = 0; pos < word.size();) {
    const Utf8Step step = utf8_step(word, pos);
    // Ill-formed bytes become one symbol each; they fall back to byte tokens below.
    const uint32_t length = step.status == Utf8Status::Valid ? step.length : 1;
    const TokenId id = t.symbol_id(word.substr(pos, length), step);
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back(Symbol{static_cast<uint32_t>(pos), length, id, index - 1, index + 1});
    pos += length;
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  const auto consider = [&](int32_t left, int32_t right) {
    const TokenId left_id = symbols[left].id;
    const TokenId right_id = symbols[right].id;
    if (left_id == kNoToken || right_id == kNoToken) return;
    const auto it = t.merges.find(pair_key(left_id, right_id));
    if (it == t.merges.end()) return;
    heap.push_back(Candidate{it->second.rank, left, right, left_id, right_id, it->second.result});
    std::push_heap(heap.begin(), heap.end(), BpeWorkspace::after);
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i, i + 1);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), BpeWorkspace::after);
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& left = symbols[c.left];
    Symbol& right = symbols[c.right];
    if (left.length == 0 || right.length == 0 || left.next != c.right || left.id != c.left_id ||
        right.id != c.right_id)
      continue;  // stale
    left.length += right.length;
    left.id = c.result;
    left.next = right.next;
    if (right.next != -1) symbols[right.next].prev = c.left;
    right.length = 0;
    if (left.prev != -1) consider(left.prev, c.left);
    if (left.next != -1) consider(c.left, left.next);
  }

  bool previous_was_unk = false;
  for (int32_t i = 0; i != -1; i = symbols[i].next) {
    const Symbol& s = symbols[i];
    if (s.id != kNoToken) {
      out.push_back(s.id);
      previous_was_unk = false;
    } else {
      append_byte_fallback(word.substr(s.start, s.length), out, previous_was_unk);
    }
  }
}

// A symbol that is not a token: its bytes as <0xXX> tokens; without byte tokens one <unk>, and
// consecutive unknown symbols share one <unk> (HF fuse_unk).
void Tokenizer::append_byte_fallback(std::string_view bytes, std::vector<TokenId>& out,
                                     bool& previous_was_unk) const {
  const auto& byte_ids = tables_->byte_ids;
  const bool all_bytes_known = std::all_of(
      bytes.begin(), bytes.end(), [&](char c) { return byte_ids[uint8_t(c)] != kNoToken; });
  if (all_bytes_known) {
    for (char c : bytes) out.push_back(byte_ids[uint8_t(c)]);
    previous_was_unk = false;
    return;
  }
  if (vocab_.unk_id == kNoToken)
    fail(vocab_.source, ": cannot encode the bytes '", bytes,
         "': the vocabulary has neither <0xXX> byte tokens for them nor an <unk> token");
  if (!previous_was_unk) out.push_back(vocab_.unk_id);
  previous_was_unk = true;
}

// ------------------------------------------------------------------------------------------
// Decoding and lookups

std::string Tokenizer::token_to_piece(TokenId id, bool special) const {
  const TokenType type = token_type(id);  // range-checked
  if (!special && is_special_type(type)) return {};
  return pieces_[id];
}

std::string Tokenizer::decode(std::span<const TokenId> ids, const DecodeOptions& options) const {
  std::string text;
  for (TokenId id : ids) {
    const TokenType type = token_type(id);
    if (!options.render_special && is_special_type(type)) continue;
    text.append(pieces_[id]);
  }
  return options.clean_spaces ? clean_spaces_like_llama(text) : text;
}

std::optional<TokenId> Tokenizer::token_id(std::string_view text) const {
  return tables_->find(text);
}

const std::string& Tokenizer::token_text(TokenId id) const {
  token_type(id);  // range check
  return vocab_.tokens[id];
}

TokenType Tokenizer::token_type(TokenId id) const {
  if (id < 0 || static_cast<size_t>(id) >= vocab_.tokens.size())
    fail(vocab_.source, ": token id ", id, " is out of range (vocabulary has ",
         vocab_.tokens.size(), " tokens)");
  return vocab_.types[id];
}

bool Tokenizer::is_control(TokenId id) const {
  return id >= 0 && static_cast<size_t>(id) < vocab_.types.size() &&
         vocab_.types[id] == TokenType::Control;
}

bool Tokenizer::is_byte(TokenId id) const {
  return id >= 0 && static_cast<size_t>(id) < vocab_.types.size() &&
         vocab_.types[id] == TokenType::Byte;
}

bool Tokenizer::is_end_of_generation(TokenId id) const {
  return std::find(eog_ids_.begin(), eog_ids_.end(), id) != eog_ids_.end();
}

// ------------------------------------------------------------------------------------------
// llama.cpp's clean_spaces (llama_detokenize with tokenizer_clean_spaces). Three passes over
// bytes, each reading the previous pass's output:
//   1. drop a space that is directly followed by one of ? ! . ,
//   2. " ' " -> "'" (the byte after such a group never counts as a preceding space)
//   3. drop the space before an apostrophe followed by s, m, re or ve (" 's" -> "'s"); " 't",
//      " 'd", " 'll" keep theirs.

std::string clean_spaces_like_llama(std::string_view text) {
  if (text.empty()) return {};
  std::string pass1;
  pass1.reserve(text.size());
  pass1.push_back(text[0]);
  for (size_t i = 1; i < text.size(); ++i) {
    const char x = text[i];
    if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) pass1.pop_back();
    pass1.push_back(x);
  }

  std::string pass2;
  pass2.reserve(pass1.size());
  pass2.push_back(pass1[0]);
  bool previous_is_blanked = false;  // the byte before i was the consumed space of " ' "
  for (size_t i = 1; i < pass1.size(); ++i) {
    const char x = pass1[i];
    const bool previous_space = pass1[i - 1] == ' ' && !previous_is_blanked;
    previous_is_blanked = false;
    if (x == '\'' && i + 1 < pass1.size() && previous_space && pass1[i + 1] == ' ') {
      pass2.pop_back();
      pass2.push_back(x);
      ++i;  // skip the space after the apostrophe
      previous_is_blanked = true;
      continue;
    }
    pass2.push_back(x);
  }

  std::string pass3;
  pass3.reserve(pass2.size());
  pass3.push_back(pass2[0]);
  for (size_t i = 1; i < pass2.size(); ++i) {
    const char x = pass2[i];
    if (pass2[i - 1] == ' ' && x == '\'' && i + 1 < pass2.size()) {
      const char x1 = pass2[i + 1];
      const char x2 = i + 2 < pass2.size() ? pass2[i + 2] : '\0';
      const bool drop =
          x1 == 's' || x1 == 'm' || (i + 2 < pass2.size() && x2 == 'e' && (x1 == 'r' || x1 == 'v'));
      if (drop) pass3.pop_back();
    }
    pass3.push_back(x);
  }
  return pass3;
}

// ------------------------------------------------------------------------------------------
// Streaming

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, bool render_special)
    : tokenizer_(&tokenizer), render_special_(render_special) {}

std::string StreamingDecoder::push(TokenId id) {
  pending_.append(tokenizer_->token_to_piece(id, render_special_));
  const size_t ready = utf8_complete_prefix(pending_);
  if (ready == 0) return {};
  std::string out = sanitize_utf8(std::string_view(pending_).substr(0, ready));
  pending_.erase(0, ready);
  return out;
}

std::string StreamingDecoder::flush() {
  std::string out = sanitize_utf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace g4
