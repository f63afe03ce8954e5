#pragma once
// Heatmaps drawn by a GLSL shader (shaders/heatmap.*.glsl): the matrix is uploaded once per new result as
// an R32F texture (plus the R8 mask and per-row maxima), and colour-mapped into the heatmap's own RGBA
// texture only when the data, the style or the size changes; every frame just shows that texture.
#include <cstdint>
#include <string>
#include <vector>

#include "gl.h"
#include "render/style.h"

namespace attnscope::gui {

// The colormaps and scales are render's (render/style.h): one type each for the window, scenes and figures; the
// window offers the first four colormaps, signed data is Diverging.
using render::Colormap;
using render::Scale;
enum class View { Weights = 0, Mask = 1 };

struct HeatmapStyle {
  Colormap colormap = Colormap::Viridis;
  Scale scale = Scale::Linear;
  View view = View::Weights;
  bool signed_values = false;  // diverging colormap around zero
  bool mask_overlay = true;    // hatch the pairs that are not computed
  float log_decades = 3.0f;
  bool exclude_first = false;      // the colour scale ignores the first key column (attention sinks saturate)
  float window[4] = {0, 0, 0, 0};  // visible cells (col0, row0, col1, row1); col1 <= col0: the whole matrix
  bool operator==(const HeatmapStyle& o) const {
    return colormap == o.colormap && scale == o.scale && view == o.view && signed_values == o.signed_values &&
           mask_overlay == o.mask_overlay && log_decades == o.log_decades && exclude_first == o.exclude_first &&
           window[0] == o.window[0] && window[1] == o.window[1] && window[2] == o.window[2] && window[3] == o.window[3];
  }
  bool operator!=(const HeatmapStyle& o) const { return !(*this == o); }
};

// The compiled program, shared by every heatmap. init() needs a current GL context.
class HeatmapProgram {
 public:
  bool init(std::string* error);  // embedded shaders, or $ATTNSCOPE_SHADER_DIR/*.glsl when set
  void destroy();
  GLuint program = 0, vao = 0;
  GLint u_data = -1, u_mask = -1, u_rowmax = -1, u_size = -1, u_target = -1, u_colormap = -1, u_scale = -1, u_view = -1,
        u_signed = -1, u_overlay = -1, u_vmax = -1, u_decades = -1, u_exclude_first = -1, u_window = -1;
};

// A matrix to show: rows x cols, row i at data + i * stride (and mask + i * stride; mask null: every pair computed).
struct HeatmapRows {
  const float* data = nullptr;
  const uint8_t* mask = nullptr;
  int rows = 0, cols = 0, stride = 0;  // stride 0: cols
  // Rows that may be read at that stride (>= rows; 0: rows): the textures are made this tall once, so that a later
  // set_rows of the same memory with more rows uploads only those (maps that share their planes, engine.h).
  int room = 0;
  // Leading rows the caller vouches are as the previous set_rows left them, over all `stride` columns, with zeros in
  // the columns it added since (a causal matrix's rows as it grows): only the rows after them are uploaded. Honoured
  // when the textures are as tall as `room`, as wide as `stride`, and the matrix did not lose rows; else all are.
  int kept = 0;
};

class Heatmap {
 public:
  Heatmap() = default;
  Heatmap(const Heatmap&) = delete;
  Heatmap& operator=(const Heatmap&) = delete;
  Heatmap(Heatmap&& o) noexcept;
  Heatmap& operator=(Heatmap&& o) noexcept;
  ~Heatmap();

  // rows x cols matrix (row-major) and its mask (1 = computed; may be null = all computed). Uploads now.
  void set_data(const float* data, const uint8_t* mask, int rows, int cols) { set_rows({data, mask, rows, cols}); }
  // The same for a matrix with a row stride, uploading only the rows after m.kept when it can. Uploads now.
  void set_rows(const HeatmapRows& m);
  int uploaded_rows() const { return uploaded_rows_; }  // rows the last set_rows uploaded (tests, diagnostics)
  // Returns the RGBA texture of the given pixel size, re-rendered only if something changed.
  GLuint render(const HeatmapProgram& prog, int width, int height, const HeatmapStyle& style);
  int rows() const { return rows_; }
  int cols() const { return cols_; }
  float vmax(bool exclude_first = false) const { return vmax_[exclude_first ? 1 : 0]; }
  bool has_negative() const { return negative_; }  // some value < 0: the diverging colormap applies
  int renders() const { return renders_; }         // how many times the shader pass ran (tests, diagnostics)

 private:
  void release();
  GLuint data_tex_ = 0, mask_tex_ = 0, rowmax_tex_ = 0, color_tex_ = 0, fbo_ = 0;
  int rows_ = 0, cols_ = 0, tw_ = 0, th_ = 0, renders_ = 0;
  int tex_w_ = 0, tex_h_ = 0, uploaded_rows_ = 0;  // the data and mask textures' size (>= cols_ x rows_)
  std::vector<float> rowmax_;                      // [2, tex_h_] as in the rowmax texture (its first rows_ used)
  float vmax_[2] = {0, 0};                         // max |value| over all keys, over the keys after the first
  bool negative_ = false;
  bool dirty_ = true;
  HeatmapStyle last_;
};

// Whether an OpenGL context is current (the window sets it once its context exists). Without one (`gui --headless`)
// heatmaps keep their sizes and maxima but upload nothing, and render() returns 0: the views lay out as usual.
void set_gl_available(bool available);
// Counts the times any heatmap's colour texture was drawn anew: a frame's picture can change with it while the
// draw data (texture names, positions) stays the same. The window skips frames whose draw data and epoch did not
// change (gui_main.cpp): a view that changes a texture's pixels some other way must count here too.
uint64_t heatmap_texture_epoch();

// The colormap table on the CPU (colour bars, legends), RGB in [0,1]; signed_values: Diverging.
void colormap_rgb(Colormap c, bool signed_values, float t, float rgb[3]);

}  // namespace attnscope::gui
