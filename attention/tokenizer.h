#pragma once
// Character-level tokenizer. The vocabulary is the sorted set of bytes of the corpus (65 symbols for Tiny
// Shakespeare) and is stored in every checkpoint. Text is treated as bytes: a UTF-8 character outside the
// vocabulary is reported once per byte sequence with its position.
#include <cstdint>
#include <string>
#include <vector>

namespace attnscope {

enum class UnknownPolicy { Error, Skip, Replace };

struct UnknownChar {
  size_t offset;        // byte offset in the text
  size_t line, column;  // 1-based
  std::string text;     // the character (a whole UTF-8 sequence), printable form
};

struct Encoded {
  std::vector<int64_t> ids;
  std::vector<size_t> source_offset;  // byte offset in the text of each id
  std::vector<UnknownChar> unknown;   // characters outside the vocabulary
};

class Tokenizer {
 public:
  Tokenizer() = default;
  explicit Tokenizer(std::string vocab);  // vocab: distinct bytes, in id order
  static Tokenizer from_corpus(const std::string& text);

  const std::string& vocab() const { return vocab_; }
  int64_t size() const { return static_cast<int64_t>(vocab_.size()); }
  bool contains(unsigned char c) const { return id_[c] >= 0; }
  int64_t replacement_id() const;  // used by UnknownPolicy::Replace: ' ' if present, else id 0

  // Never throws: unknown characters are listed in Encoded::unknown (and skipped or replaced).
  Encoded encode(const std::string& text, UnknownPolicy policy) const;
  // Throws Error describing the unknown characters when policy is Error and any are found.
  std::vector<int64_t> encode_or_throw(const std::string& text, UnknownPolicy policy) const;
  std::string decode(const std::vector<int64_t>& ids) const;
  char symbol(int64_t id) const;

 private:
  std::string vocab_;
  int id_[256];
  void index();
};

// "2 characters are not in the vocabulary: 'é' at line 1, column 4; ..." (at most a few listed)
std::string describe_unknown(const std::vector<UnknownChar>& u);
UnknownPolicy parse_unknown_policy(const std::string& s);  // error|skip|replace, throws Error

}  // namespace attnscope
