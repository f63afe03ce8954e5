#include "tokenizer.h"

#include <algorithm>
#include <cstdio>

#include "error.h"

namespace attnscope {

Tokenizer::Tokenizer(std::string vocab) : vocab_(std::move(vocab)) { index(); }

void Tokenizer::index() {
  std::fill(std::begin(id_), std::end(id_), -1);
  for (size_t i = 0; i < vocab_.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(vocab_[i]);
    if (id_[c] >= 0) throw Error("vocabulary repeats the character '" + std::string(1, vocab_[i]) + "'");
    id_[c] = static_cast<int>(i);
  }
}

Tokenizer Tokenizer::from_corpus(const std::string& text) {
  bool seen[256] = {};
  for (unsigned char c : text) seen[c] = true;
  std::string v;
  for (int c = 0; c < 256; ++c)
    if (seen[c]) v.push_back(static_cast<char>(c));
  if (v.empty()) throw Error("the corpus is empty: no vocabulary");
  return Tokenizer(v);
}

int64_t Tokenizer::replacement_id() const {
  return id_[static_cast<unsigned char>(' ')] >= 0 ? id_[static_cast<unsigned char>(' ')] : 0;
}

char Tokenizer::symbol(int64_t id) const {
  if (id < 0 || id >= size()) throw Error("token id " + std::to_string(id) + " is outside the vocabulary");
  return vocab_[static_cast<size_t>(id)];
}

// Length of the UTF-8 sequence starting with byte c (1 for invalid lead bytes, so we always advance).
static size_t utf8_len(unsigned char c) {
  if (c >= 0xF0 && c <= 0xF7) return 4;
  if (c >= 0xE0) return c <= 0xEF ? 3 : 1;
  if (c >= 0xC2) return 2;
  return 1;
}

static std::string printable(const std::string& s) {
  if (s.size() == 1) {
    unsigned char c = static_cast<unsigned char>(s[0]);
    if (c == '\t') return "\\t";
    if (c == '\r') return "\\r";
    if (c < 0x20 || c >= 0x7F) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02X", c);
      return b;
    }
  }
  return s;
}

Encoded Tokenizer::encode(const std::string& text, UnknownPolicy policy) const {
  Encoded e;
  e.ids.reserve(text.size());
  size_t line = 1, col = 1;
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t n = 1;
    if (id_[c] >= 0) {
      e.ids.push_back(id_[c]);
      e.source_offset.push_back(i);
    } else {
      n = std::min(utf8_len(c), text.size() - i);
      // A valid multi-byte sequence needs continuation bytes; otherwise report the single byte.
      for (size_t k = 1; k < n; ++k)
        if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) {
          n = 1;
          break;
        }
      e.unknown.push_back({i, line, col, printable(text.substr(i, n))});
      if (policy == UnknownPolicy::Replace) {
        e.ids.push_back(replacement_id());
        e.source_offset.push_back(i);
      }
    }
    if (c == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
    i += n;
  }
  return e;
}

std::vector<int64_t> Tokenizer::encode_or_throw(const std::string& text, UnknownPolicy policy) const {
  Encoded e = encode(text, policy);
  if (policy == UnknownPolicy::Error && !e.unknown.empty())
    throw Error(describe_unknown(e.unknown) + " (use --unknown=skip or --unknown=replace)");
  return std::move(e.ids);
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string s;
  s.reserve(ids.size());
  for (int64_t id : ids) s.push_back(symbol(id));
  return s;
}

std::string describe_unknown(const std::vector<UnknownChar>& u) {
  std::string s =
      std::to_string(u.size()) + (u.size() == 1 ? " character is" : " characters are") + " not in the vocabulary: ";
  const size_t shown = std::min<size_t>(u.size(), 5);
  for (size_t i = 0; i < shown; ++i)
    s += (i ? "; '" : "'") + u[i].text + "' at line " + std::to_string(u[i].line) + ", column " +
         std::to_string(u[i].column);
  if (u.size() > shown) s += "; ...";
  return s;
}

UnknownPolicy parse_unknown_policy(const std::string& s) {
  if (s == "error") return UnknownPolicy::Error;
  if (s == "skip") return UnknownPolicy::Skip;
  if (s == "replace") return UnknownPolicy::Replace;
  throw Error("--unknown must be error, skip or replace, not '" + s + "'");
}

}  // namespace attnscope
