// Torch-free engine pieces: parameters as data, the registry, the tokenizer, the model config.
#include <fstream>
#include <functional>
#include <set>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "config.h"
#include "error.h"
#include "npy.h"
#include "registry.h"
#include "tokenizer.h"
#include "test_util.h"

using namespace attnscope;
using testing_util::error_of;

TEST(Registry, NamesAreStableSnakeCaseAndUnique) {
  std::set<std::string> seen;
  for (const auto& v : variant_registry()) {
    EXPECT_TRUE(seen.insert(v.name).second) << v.name;
    for (char c : v.name) EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') << v.name;
    EXPECT_FALSE(v.description.empty()) << v.name;
    EXPECT_FALSE(v.citation.empty()) << v.name;
    for (const auto& p : v.params) {
      EXPECT_FALSE(p.tooltip.empty()) << v.name << "." << p.name;
      if (p.type == ParamType::Int || p.type == ParamType::Float) {
        EXPECT_LE(p.min, p.def) << v.name << "." << p.name;
        EXPECT_LE(p.def, p.max) << v.name << "." << p.name;
      }
    }
  }
  for (const char* n : {"mha", "mqa", "gqa", "cross"}) EXPECT_NE(find_variant(n), nullptr) << n;
}

TEST(Registry, UnknownVariantListsKnownNames) {
  auto msg = error_of([] { get_variant("flash9"); });
  EXPECT_NE(msg.find("unknown variant 'flash9'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("mha"), std::string::npos) << msg;
}

TEST(Params, ParseAndResolve) {
  const auto& gqa = get_variant("gqa");
  auto p = parse_param(gqa.params, "gqa", "groups=4");
  EXPECT_EQ(p.first, "groups");
  EXPECT_EQ(p.second, 4);
  ParamValues v = resolve_params(gqa.params, "gqa", {p});
  EXPECT_EQ(v.at("groups"), 4);
  EXPECT_EQ(resolve_params(gqa.params, "gqa", {}).at("groups"), 2);  // default
  const auto& mha = get_variant("mha");
  EXPECT_EQ(parse_param(mha.params, "mha", "impl=sdpa").second, 1);
}

TEST(Params, BadValuesGiveClearMessages) {
  const auto& gqa = get_variant("gqa");
  EXPECT_NE(error_of([&] { parse_param(gqa.params, "gqa", "groups"); }).find("expected NAME=VALUE"), std::string::npos);
  EXPECT_NE(error_of([&] { parse_param(gqa.params, "gqa", "window=3"); }).find("has no parameter 'window'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_param(gqa.params, "gqa", "groups=two"); }).find("is not a number"), std::string::npos);
  EXPECT_NE(error_of([&] {
              resolve_params(gqa.params, "gqa", {{"groups", 1.5}});
            }).find("whole number"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              resolve_params(gqa.params, "gqa", {{"groups", 0}});
            }).find("outside 1..64"),
            std::string::npos);
  const auto& mha = get_variant("mha");
  EXPECT_NE(error_of([&] { parse_param(mha.params, "mha", "impl=fast"); }).find("not one of naive|sdpa"),
            std::string::npos);
}

TEST(Params, SweepSnapsDivisors) {
  const auto& g = *get_variant("gqa").find_param("groups");
  EXPECT_EQ(sweep_values(g, 8), (std::vector<double>{1, 2, 8}));
  EXPECT_EQ(sweep_values(g, 6), (std::vector<double>{1, 2, 6}));
  EXPECT_EQ(sweep_values(*get_variant("mha").find_param("impl"), 8).size(), 2u);
}

TEST(Tokenizer, VocabularyFromCorpus) {
  Tokenizer t = Tokenizer::from_corpus("hello world\n");
  EXPECT_EQ(t.vocab(), std::string("\n dehlorw"));
  auto ids = t.encode_or_throw("hello", UnknownPolicy::Error);
  EXPECT_EQ(t.decode(ids), "hello");
  EXPECT_EQ(ids.size(), 5u);
}

TEST(Tokenizer, UnknownCharactersReportedWithPlace) {
  Tokenizer t = Tokenizer::from_corpus("abc \n");
  Encoded e = t.encode("ab\nc\xC3\xA9 z", UnknownPolicy::Skip);  // 'é' is two bytes, one character
  ASSERT_EQ(e.unknown.size(), 2u);
  EXPECT_EQ(e.unknown[0].text, "\xC3\xA9");
  EXPECT_EQ(e.unknown[0].line, 2u);
  EXPECT_EQ(e.unknown[0].column, 2u);
  EXPECT_EQ(e.unknown[1].text, "z");
  EXPECT_EQ(t.decode(e.ids), "ab\nc ");
  Encoded r = t.encode("a\xC3\xA9", UnknownPolicy::Replace);
  EXPECT_EQ(t.decode(r.ids), "a ");
  auto msg = error_of([&] { t.encode_or_throw("x", UnknownPolicy::Error); });
  EXPECT_NE(msg.find("1 character is not in the vocabulary: 'x' at line 1, column 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--unknown=skip"), std::string::npos);
}

TEST(Tokenizer, ArbitraryBytesNeverThrowInSkipMode) {
  Tokenizer t = Tokenizer::from_corpus("abc");
  std::string junk;
  for (int i = 0; i < 256; ++i) junk.push_back(static_cast<char>(i));
  junk += "\xF0\x9F";  // truncated 4-byte sequence at the end
  Encoded e = t.encode(junk, UnknownPolicy::Skip);
  EXPECT_EQ(e.ids.size(), 3u);
  EXPECT_GE(e.unknown.size(), 200u);
  EXPECT_EQ(error_of([] { parse_unknown_policy("drop"); }).find("--unknown must be"), 0u);
}

TEST(Tokenizer, ShakespeareHas65Symbols) {
  std::ifstream f(std::string(ATTNSCOPE_SOURCE_DIR) + "/assets/tinyshakespeare.txt", std::ios::binary);
  ASSERT_TRUE(f.good());
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.size(), 1115394u);
  EXPECT_EQ(Tokenizer::from_corpus(text).size(), 65);
}

TEST(Config, JsonRoundTripAndValidation) {
  ModelConfig c;
  c.set_all_layers("gqa", {{"groups", 4}});
  c.position = PosKind::Alibi;
  ModelConfig d = config_from_json(config_to_json(c));
  EXPECT_EQ(d.n_layer, 4);
  EXPECT_EQ(d.position, PosKind::Alibi);
  EXPECT_EQ(d.layers[2].variant, "gqa");
  EXPECT_EQ(d.layers[2].params.at("groups"), 4);
  auto j = config_to_json(c);
  j.erase("n_head");
  EXPECT_NE(error_of([&] { config_from_json(j); }).find("missing field 'model.n_head'"), std::string::npos);
  j = config_to_json(c);
  j["d_model"] = 100;
  EXPECT_NE(error_of([&] { config_from_json(j); }).find("divisible by n_head"), std::string::npos);
  j = config_to_json(c);
  j["layers"][0]["variant"] = "nope";
  EXPECT_NE(error_of([&] { config_from_json(j); }).find("unknown variant 'nope'"), std::string::npos);
  j = config_to_json(c);
  j["context"] = "long";
  EXPECT_NE(error_of([&] { config_from_json(j); }).find("'model.context' has the wrong type"), std::string::npos);
  j = config_to_json(c);
  j["vocab_size"] = 4.4e44;  // a float where a whole number belongs (once undefined behaviour: fuzz_config)
  EXPECT_NE(error_of([&] { config_from_json(j); }).find("'model.vocab_size' has the wrong type"), std::string::npos);
  j = config_to_json(c);
  j["moe_experts"] = 2.5;
  EXPECT_NE(error_of([&] { config_from_json(j); }).find("'model.moe_experts' has the wrong type"), std::string::npos);
}

TEST(Config, RopeDimsRoundDownToEven) {
  ModelConfig c;  // d_h = 16
  c.rope_fraction = 0.25;
  EXPECT_EQ(c.rope_dims(), 4);
  c.rope_fraction = 0.3;  // 4.8 -> 4
  EXPECT_EQ(c.rope_dims(), 4);
  c.rope_fraction = 0.4;  // 6.4 -> 6
  EXPECT_EQ(c.rope_dims(), 6);
}

TEST(Npy, HeaderIsAlignedAndParsable) {
  float d[6] = {0, 1, 2, 3, 4, 5};
  std::string b = npy_bytes({2, 3}, d);
  EXPECT_EQ(b.substr(0, 6), "\x93NUMPY");
  size_t hl = static_cast<unsigned char>(b[8]) | (static_cast<unsigned char>(b[9]) << 8);
  EXPECT_EQ((10 + hl) % 64, 0u);
  EXPECT_NE(b.find("'shape': (2,3)"), std::string::npos);
  EXPECT_EQ(b[10 + hl - 1], '\n');
  EXPECT_EQ(b.size(), 10 + hl + sizeof d);
  EXPECT_NE(npy_bytes({3}, d).find("'shape': (3,)"), std::string::npos);
}
