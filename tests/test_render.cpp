// The figure renderer (app/render), scene files (app/session/scene) and the render command's figures (app/cli):
// golden images, determinism, exports that round-trip, and forgiving scene loading.
#include <gtest/gtest.h>
#include <stb/stb_image.h>  // stbi_load_from_memory is exported by libstb.so

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

#include "cmd_render.h"
#include "error.h"
#include "render/canvas.h"
#include "render/colormap_table.h"
#include "render/figure.h"
#include "safetensors.h"
#include "scene.h"

using namespace attnscope;
using namespace attnscope::render;

namespace {

std::string read_file(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

struct Image {
  int w = 0, h = 0;
  std::vector<uint8_t> rgb;
};

Image decode_png(const std::string& bytes) {
  Image im;
  int n = 0;
  unsigned char* p = stbi_load_from_memory(reinterpret_cast<const unsigned char*>(bytes.data()), int(bytes.size()),
                                           &im.w, &im.h, &n, 3);
  if (!p) return im;
  im.rgb.assign(p, p + size_t(im.w) * size_t(im.h) * 3);
  stbi_image_free(p);
  return im;
}

// Compares with tests/golden/NAME.png: same size, and at most 0.2% of the pixels more than 24 levels off in a
// channel (text antialiasing and float noise from the forward). On failure the rendered image and a diff
// image (differing pixels in red) are written into the build directory. ATTNSCOPE_UPDATE_GOLDEN=1 rewrites the
// reference instead.
void expect_golden(const std::string& name, const std::string& png) {
  const std::string ref_path = std::string(ATTNSCOPE_SOURCE_DIR) + "/tests/golden/" + name + ".png";
  if (std::getenv("ATTNSCOPE_UPDATE_GOLDEN")) {
    write_file_atomic(ref_path, png);
    GTEST_SKIP() << "rewrote " << ref_path;
  }
  const Image got = decode_png(png), want = decode_png(read_file(ref_path));
  ASSERT_FALSE(want.rgb.empty()) << "missing reference " << ref_path << " (run with ATTNSCOPE_UPDATE_GOLDEN=1)";
  const std::string out_dir = ATTNSCOPE_GOLDEN_OUT;
  ::mkdir(out_dir.c_str(), 0755);
  if (got.w != want.w || got.h != want.h) {
    write_file_atomic(out_dir + "/" + name + ".actual.png", png);
    FAIL() << name << ": " << got.w << " x " << got.h << " px, reference " << want.w << " x " << want.h
           << " (actual in " << out_dir << ")";
  }
  Canvas diff(got.w, got.h, {255, 255, 255});
  size_t bad = 0;
  for (int y = 0; y < got.h; ++y)
    for (int x = 0; x < got.w; ++x) {
      const size_t i = (size_t(y) * size_t(got.w) + size_t(x)) * 3;
      int d = 0;
      for (int c = 0; c < 3; ++c) d = std::max(d, std::abs(int(got.rgb[i + size_t(c)]) - int(want.rgb[i + size_t(c)])));
      const uint8_t g = uint8_t(255 - (255 - got.rgb[i]) / 4);
      diff.set(x, y, d > 24 ? Rgb{255, 0, 0} : Rgb{g, g, g});
      bad += d > 24;
    }
  const size_t allowed = size_t(got.w) * size_t(got.h) / 500;
  if (bad > allowed) {
    write_file_atomic(out_dir + "/" + name + ".actual.png", png);
    write_file_atomic(out_dir + "/" + name + ".diff.png", diff.png());
    FAIL() << name << ": " << bad << " pixels differ (allowed " << allowed << "); see " << out_dir << "/" << name
           << ".diff.png";
  }
}

// A figure from fixed numbers: a causal softmax-like matrix, a banded mask, and a signed diff with its KL strip.
Figure synthetic_figure() {
  const int n = 12;
  const std::string text = "to be, or no";
  Figure f;
  f.title = "synthetic figure";
  f.subtitle = "fixed inputs";
  for (int k = 0; k < 3; ++k) {
    Panel p;
    p.kind = k == 0 ? PanelKind::Weights : k == 1 ? PanelKind::Mask : PanelKind::Diff;
    p.title = k == 0 ? "weights" : k == 1 ? "mask" : "diff";
    p.subtitle = "layer 0 \u00B7 head " + std::to_string(k);
    p.caption = "caption " + std::to_string(k);
    p.rows = p.cols = n;
    for (int i = 0; i < n; ++i) {
      p.row_labels.push_back(char_label(uint8_t(text[size_t(i)])));
      double z = 0;
      for (int j = 0; j <= i; ++j) z += std::exp(-0.5 * (i - j));
      for (int j = 0; j < n; ++j) {
        const bool causal = j <= i;
        float v = 0;
        if (k == 0) v = causal ? float(std::exp(-0.5 * (i - j)) / z) : 0.f;
        if (k == 1) v = causal && i - j < 4 ? 1.f : 0.f;
        if (k == 2) v = causal ? float(0.1 * std::sin(i * 0.7 + j)) : 0.f;
        p.values.push_back(v);
        if (k != 1) p.mask.push_back(causal);
      }
      if (k == 2) p.row_stat.push_back(float(0.01 * i));
    }
    p.col_labels = p.row_labels;
    if (k == 2) p.row_stat_label = "KL per row";
    f.panels.push_back(p);
  }
  f.data_shape = {3, n, n};
  return f;
}

std::string bundled_model() { return std::string(ATTNSCOPE_SOURCE_DIR) + "/assets/models/mha"; }

}  // namespace

TEST(Render, SyntheticGolden) {
  Style s;
  s.colormap = Colormap::Magma;
  expect_golden("synthetic", figure_png(synthetic_figure(), s));
}

TEST(Render, ColormapsMatchTheShader) {
  // the table by hand: viridis(0) = c0, viridis(1) and magma(1) = the sums of the coefficients,
  // the diverging midpoint, cividis's first stop
  EXPECT_EQ(colormap_rgb(Colormap::Viridis, 0), (Rgb{71, 1, 85}));
  EXPECT_EQ(colormap_rgb(Colormap::Viridis, 1), (Rgb{252, 231, 33}));
  EXPECT_EQ(colormap_rgb(Colormap::Magma, 1), (Rgb{254, 249, 186}));
  EXPECT_EQ(colormap_rgb(Colormap::Diverging, 0.5f), (Rgb{221, 221, 221}));
  EXPECT_EQ(colormap_rgb(Colormap::Gray, 1), (Rgb{255, 255, 255}));
  EXPECT_EQ(colormap_rgb(Colormap::Cividis, 0), (Rgb{0, 34, 78}));
}

// The table-driven colormaps at known points: matplotlib's own values (viridis, magma: the polynomial fits are
// within 0.025 of them), and the stops' exact interpolations.
TEST(Render, ColormapTableKnownValues) {
  struct Known {
    Colormap c;
    double t, r, g, b, tol;
  };
  const Known known[] = {
      {Colormap::Viridis, 0.0, 0.267004, 0.004874, 0.329415, 0.025},  // matplotlib _viridis_data[0]
      {Colormap::Viridis, 0.5, 0.127568, 0.566949, 0.550556, 0.025},  // [128]
      {Colormap::Viridis, 1.0, 0.993248, 0.906157, 0.143936, 0.025},  // [255]
      {Colormap::Magma, 0.0, 0.001462, 0.000466, 0.013866, 0.025},
      {Colormap::Magma, 0.5, 0.716387, 0.214982, 0.474720, 0.025},
      {Colormap::Magma, 1.0, 0.987053, 0.991438, 0.749504, 0.025},
      {Colormap::Cividis, 0.5, 0.490, 0.486, 0.471, 1e-12},         // the fifth stop
      {Colormap::Cividis, 1.0 / 16, 0.051, 0.1765, 0.3705, 1e-12},  // halfway between the first two
      {Colormap::Cividis, 2.0, 0.996, 0.910, 0.220, 1e-12},         // clamped to t = 1
      {Colormap::Gray, 0.3, 0.3, 0.3, 0.3, 1e-12},
      {Colormap::Diverging, 0.25, 0.5475, 0.582, 0.8095, 1e-12},   // halfway from cold to white
      {Colormap::Diverging, 0.75, 0.7855, 0.4405, 0.5075, 1e-12},  // halfway from white to warm
  };
  for (const Known& k : known) {
    const std::array<double, 3> v = colormap_value(k.c, k.t);
    EXPECT_NEAR(v[0], k.r, k.tol) << colormap_name(k.c) << " at " << k.t;
    EXPECT_NEAR(v[1], k.g, k.tol) << colormap_name(k.c) << " at " << k.t;
    EXPECT_NEAR(v[2], k.b, k.tol) << colormap_name(k.c) << " at " << k.t;
    const Rgb b = colormap_rgb(k.c, float(k.t));  // the bytes round the same values
    EXPECT_EQ(b.r, uint8_t(std::lround(std::clamp(v[0], 0.0, 1.0) * 255)));
    EXPECT_EQ(b.b, uint8_t(std::lround(std::clamp(v[2], 0.0, 1.0) * 255)));
  }
  // polynomials: the sum of the coefficients at t = 1, evaluated from the table directly
  for (const ColormapEntry& e : kColormapTable) {
    if (e.kind != RampKind::Polynomial) continue;
    double sum = 0;
    for (int k = 0; k < e.rows; ++k) sum += e.rgb[k][1];
    EXPECT_NEAR(colormap_value(e.id, 1.0)[1], std::clamp(sum, 0.0, 1.0), 1e-12) << e.name;
  }
}

// The shader's colormap functions are the table: every literal in colormap_glsl() reads back as the table's
// value, in the table's order, and colormap(id, t) dispatches on the values of Colormap.
TEST(Render, ColormapGlslIsTheTable) {
  const std::string glsl = colormap_glsl();
  for (const ColormapEntry& e : kColormapTable) {
    const size_t at = glsl.find("vec3 " + std::string(e.name) + "(float t) {");
    ASSERT_NE(at, std::string::npos) << e.name;
    const std::string body = glsl.substr(at, glsl.find("\n}\n", at) - at);
    std::vector<double> numbers;  // the literals inside vec3(...), in order
    for (size_t p = body.find("vec3(", 0); p != std::string::npos; p = body.find("vec3(", p)) {
      p += 5;
      for (int k = 0; k < 3; ++k) {
        char* end = nullptr;
        numbers.push_back(std::strtod(body.c_str() + p, &end));
        p = size_t(end - body.c_str()) + 2;  // past ", " or ")"
      }
    }
    ASSERT_EQ(numbers.size(), size_t(3 * e.rows)) << e.name;
    for (int k = 0; k < e.rows; ++k)
      for (int ch = 0; ch < 3; ++ch) EXPECT_EQ(numbers[size_t(3 * k + ch)], e.rgb[k][ch]) << e.name << " row " << k;
    if (e.kind == RampKind::Stops) {
      EXPECT_NE(body.find("min(int(x), " + std::to_string(e.rows - 2) + ")"), std::string::npos) << e.name;
    }
    if (e.id != Colormap::Viridis) {
      EXPECT_NE(glsl.find("if (id == " + std::to_string(int(e.id)) + ") return " + e.name + "(t);"), std::string::npos);
    }
  }
  EXPECT_EQ(parse_colormap("grayscale"), Colormap::Gray);
  EXPECT_EQ(parse_colormap("diverging"), Colormap::Diverging);
  EXPECT_FALSE(parse_colormap("jet").has_value());
}

TEST(Render, DeterministicBytes) {
  const Figure f = synthetic_figure();
  Style s;
  s.png_scale = 2;
  EXPECT_EQ(figure_png(f, s), figure_png(f, s));
  EXPECT_EQ(figure_svg(f, s), figure_svg(f, s));
  int w = 0, h = 0;
  figure_size(f, s, &w, &h);
  const Image im = decode_png(figure_png(f, s));
  EXPECT_EQ(im.w, w);
  EXPECT_EQ(im.h, h);
}

TEST(Render, AbsurdSizeIsRefused) {
  Figure f = synthetic_figure();
  for (int i = 0; i < 40; ++i) f.panels.push_back(f.panels[0]);
  f.grid_cols = 43;
  Style s;
  s.zoom = 8;
  s.png_scale = 4;
  try {
    figure_png(f, s);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("more than 16384 a side"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Canvas(20000, 10, {0, 0, 0}), Error);
}

TEST(Render, SvgHasVectorTextAndEscapes) {
  Figure f = synthetic_figure();
  f.title = "a < b & \"c\"";
  const std::string svg = figure_svg(f, Style{});
  EXPECT_NE(svg.find("<text"), std::string::npos);
  EXPECT_NE(svg.find("a &lt; b &amp; &quot;c&quot;"), std::string::npos);
  EXPECT_NE(svg.find(">query</text>"), std::string::npos);
  EXPECT_NE(svg.find("data:image/png;base64,"), std::string::npos);
  EXPECT_NE(svg.find("\u2423"), std::string::npos);  // the space label
}

TEST(Render, CsvAndNpyRoundTrip) {
  const Figure f = synthetic_figure();
  std::vector<float> all;
  for (const Panel& p : f.panels) all.insert(all.end(), p.values.begin(), p.values.end());
  // CSV: every value back exactly (%.9g), comment lines between panels
  std::istringstream csv(figure_csv(f));
  std::vector<float> back;
  std::string line;
  while (std::getline(csv, line)) {
    if (line.rfind("#", 0) == 0) continue;
    std::istringstream row(line);
    std::string cell;
    while (std::getline(row, cell, ',')) back.push_back(std::strtof(cell.c_str(), nullptr));
  }
  EXPECT_EQ(back, all);
  // NPY: the header names the shape, the data are the float32 values
  const std::string npy = figure_npy(f);
  ASSERT_EQ(npy.substr(1, 5), "NUMPY");
  const size_t header = 10 + size_t(uint8_t(npy[8])) + 256 * size_t(uint8_t(npy[9]));
  EXPECT_NE(npy.substr(0, header).find("(3,12,12)"), std::string::npos) << npy.substr(0, header);
  ASSERT_EQ(npy.size() - header, all.size() * 4);
  EXPECT_EQ(std::memcmp(npy.data() + header, all.data(), all.size() * 4), 0);
}

TEST(Render, KlRows) {
  const float p[4] = {0.5f, 0.5f, 1.f, 0.f}, q[4] = {0.5f, 0.5f, 0.5f, 0.5f};
  const std::vector<float> kl = kl_rows(p, q, 2, 2);
  EXPECT_NEAR(kl[0], 0.0, 1e-7);
  EXPECT_NEAR(kl[1], std::log(2.0), 1e-6);
}

TEST(Scene, SaveLoadRoundTrip) {
  Scene s;
  s.title = "t";
  s.text = "ROMEO:\nhi";
  s.colormap = Colormap::Cividis;
  s.scale = Scale::Log;
  s.zoom = 1.5;
  s.columns.push_back(parse_column_spec("gqa:groups=2"));
  SceneColumn c = parse_column_spec("performer:orthogonal=false,features=64");
  c.layer = -1;
  c.head = 3;
  c.view = PanelKind::Diff;
  s.columns.push_back(c);
  s.columns.push_back(parse_column_spec("mha:impl=sdpa"));
  const std::string path = std::string(ATTNSCOPE_GOLDEN_OUT) + ".scene.json";
  save_scene(path, s);
  SceneLoad l = load_scene(path);
  EXPECT_TRUE(l.skipped.empty()) << l.skipped.front();
  EXPECT_EQ(scene_json(l.scene), scene_json(s));
  EXPECT_EQ(l.scene.columns[1].params.at("features"), 64);
  EXPECT_EQ(l.scene.columns[1].params.at("orthogonal"), 0);
  EXPECT_EQ(l.scene.columns[1].layer, -1);
  EXPECT_EQ(l.scene.columns[1].view, PanelKind::Diff);
  EXPECT_EQ(l.scene.colormap, Colormap::Cividis);
  EXPECT_EQ(l.scene.zoom, 1.5);
  std::remove(path.c_str());
}

TEST(Scene, LoadsWhatItCanAndSaysWhatItSkipped) {
  const std::string text = R"({"version": 7, "text": "hello", "colormap": "jet", "zoom": 100, "extra": 1,
    "columns": [{"variant": "mha"}, {"variant": "no_such_variant"}, {"variant": "gqa", "params": {"groups": 999}},
                {"variant": "sliding_window", "params": ["window=8"], "layer": 1.5, "colour": "red"}, "mqa", 42]})";
  SceneLoad l = parse_scene(text, "test");
  ASSERT_EQ(l.scene.columns.size(), 4u);  // mha, gqa (default groups), sliding_window, mqa
  EXPECT_EQ(l.scene.columns[1].variant, "gqa");
  EXPECT_TRUE(l.scene.columns[1].params.empty());
  EXPECT_EQ(l.scene.columns[2].params.at("window"), 8);
  EXPECT_EQ(l.scene.columns[2].layer, 0);
  EXPECT_EQ(l.scene.zoom, 8);
  EXPECT_EQ(l.scene.colormap, Colormap::Viridis);
  auto said = [&](const std::string& what) {
    for (const auto& m : l.skipped)
      if (m.find(what) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(said("newer attnscope (scene version 7"));
  EXPECT_TRUE(said("\"colormap\": \"jet\""));
  EXPECT_TRUE(said("\"zoom\": 100 is outside 0.25..8"));
  EXPECT_TRUE(said("unknown field \"extra\""));
  EXPECT_TRUE(said("column 2: skipped: unknown variant 'no_such_variant'"));
  EXPECT_TRUE(said("column 3: skipped parameter 'groups=999'"));
  EXPECT_TRUE(said("column 4: \"layer\": 1.5"));
  EXPECT_TRUE(said("column 4: skipped unknown field \"colour\""));
  EXPECT_TRUE(said("column 6: skipped: expected an object"));

  SceneLoad old = parse_scene(R"({"columns": [{"variant": "mha"}]})", "old");
  ASSERT_FALSE(old.skipped.empty());
  EXPECT_NE(old.skipped[0].find("no \"version\""), std::string::npos);
  EXPECT_EQ(old.scene.text, kDefaultSceneText);
}

TEST(Scene, UnusableScenesAreErrors) {
  EXPECT_THROW(parse_scene("{not json", "x"), Error);
  EXPECT_THROW(parse_scene("[1, 2]", "x"), Error);
  EXPECT_THROW(parse_scene(R"({"version": 1, "columns": [{"variant": "nope"}]})", "x"), Error);
  EXPECT_THROW(parse_scene(R"({"version": 1})", "x"), Error);
  EXPECT_THROW(load_scene("/nonexistent/scene.json"), Error);
}

TEST(Scene, FitToModel) {
  Scene s;
  s.columns = {parse_column_spec("mha"), parse_column_spec("mqa")};
  s.columns[1].layer = 9;
  std::vector<std::string> skipped;
  fit_scene_to_model(s, 4, 8, &skipped);
  ASSERT_EQ(s.columns.size(), 1u);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find("layer 9, the model has 4"), std::string::npos);
}

// The bundled checkpoint through the same code as `attnscope render --compare mha,gqa:groups=2 --view diff`.
TEST(RenderModel, CompareAndDiffGolden) {
  auto model = Model::load(bundled_model(), "cpu");
  Scene s;
  s.text = "ROMEO:\nBut, soft!";
  s.columns = {parse_column_spec("mha"), parse_column_spec("gqa:groups=2")};
  s.columns.push_back(s.columns[1]);
  s.columns.back().view = PanelKind::Diff;
  s.colormap = Colormap::Diverging;
  std::vector<std::string> skipped;
  const auto ids = model->tokenizer().encode_or_throw(s.text, UnknownPolicy::Error);
  const Figure f = scene_figure(s, *model, ids, false, &skipped);
  ASSERT_EQ(f.panels.size(), 3u);
  EXPECT_EQ(f.panels[2].title, "mha \u2212 gqa (groups=2)");
  EXPECT_NE(f.panels[2].caption.find("KL(mha \u2016 gqa (groups=2)) per row: mean"), std::string::npos);
  EXPECT_EQ(f.data_shape, (std::vector<int64_t>{3, 17, 17}));
  // the diff is the first minus the second, signed for the diverging colormap
  for (size_t i = 0; i < f.panels[2].values.size(); ++i)
    ASSERT_NEAR(f.panels[2].values[i], f.panels[0].values[i] - f.panels[1].values[i], 1e-6);
  Style st;
  st.colormap = s.colormap;
  expect_golden("mha_gqa_diff", figure_png(f, st));
}

TEST(RenderModel, GridGolden) {
  auto model = Model::load(bundled_model(), "cpu");
  Scene s;
  s.text = "To be, or not to be: that is";
  SceneColumn c = parse_column_spec("mha");
  c.layer = -1;
  c.head = -1;
  s.columns = {c};
  std::vector<std::string> skipped;
  const auto ids = model->tokenizer().encode_or_throw(s.text, UnknownPolicy::Error);
  const Figure f = scene_figure(s, *model, ids, false, &skipped);
  EXPECT_EQ(f.panels.size(), 32u);
  EXPECT_EQ(f.grid_cols, 8);
  EXPECT_EQ(f.data_shape, (std::vector<int64_t>{4, 8, 28, 28}));
  Style st;
  st.scale = Scale::Log;
  expect_golden("mha_grid_log", figure_png(f, st));
}

TEST(RenderModel, ImpossibleColumnsAreSkippedInScenes) {
  auto model = Model::load(bundled_model(), "cpu");
  Scene s;
  s.columns = {parse_column_spec("mha"), parse_column_spec("gqa:groups=3")};  // 3 does not divide 8 heads
  const auto ids = model->tokenizer().encode_or_throw("hello", UnknownPolicy::Error);
  std::vector<std::string> skipped;
  EXPECT_THROW(scene_figure(s, *model, ids, false, &skipped), Error);
  const Figure f = scene_figure(s, *model, ids, true, &skipped);
  EXPECT_EQ(f.panels.size(), 1u);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find("column 2 (gqa (groups=3)): skipped"), std::string::npos) << skipped[0];
}
