// The heatmap: one cell per (query row, key column) of an attention matrix, drawn into the heatmap's own
// texture only when the data or the style changes. The program loader prepends the colormap functions
// (viridis, magma, cividis, gray, diverging and colormap(id, t)), written from app/render/colormap_table.h.
in vec2 v_uv;
out vec4 frag;

uniform sampler2D u_data;    // R32F [rows x cols]: the matrix
uniform sampler2D u_mask;    // R8   [rows x cols]: 1 = pair computed
uniform sampler2D u_rowmax;  // R32F [rows x 2]: max |value| of each row, over all keys / keys after the first
uniform ivec2 u_size;        // (cols, rows)
uniform vec2 u_target;       // target size in pixels
uniform int u_colormap;      // render::Colormap: 0 viridis, 1 magma, 2 cividis, 3 grayscale (ignored when signed)
uniform int u_scale;         // 0 linear, 1 log, 2 row-normalised
uniform int u_view;          // 0 weights, 1 mask (computed pairs)
uniform int u_signed;        // 1: diverging colormap around 0
uniform int u_overlay;       // 1: hatch the pairs that are not computed
uniform float u_vmax;        // max |value| of the matrix (first key excluded when u_exclude_first)
uniform float u_decades;     // log scale: decades below the max shown
uniform int u_exclude_first; // 1: the colour scale ignores the first key (attention sinks); it saturates
uniform vec4 u_window;       // the visible part in cells: (first col, first row, last col + 1, last row + 1)

vec3 ramp(float t) {
  return colormap(u_colormap, clamp(t, 0.0, 1.0));
}

void main() {
  vec2 at = mix(u_window.xy, u_window.zw, v_uv);  // in cells
  ivec2 cell = ivec2(clamp(floor(at), vec2(0.0), vec2(u_size - 1)));
  float v = texelFetch(u_data, cell, 0).r;
  bool computed = texelFetch(u_mask, cell, 0).r > 0.002;  // R8 stores 1 as 1/255
  float norm = u_scale == 2 ? texelFetch(u_rowmax, ivec2(cell.y, u_exclude_first), 0).r : u_vmax;
  norm = max(norm, 1e-30);
  vec3 c;
  if (u_view == 1) {
    c = computed ? vec3(0.98, 0.78, 0.30) : vec3(0.13, 0.14, 0.17);
  } else if (u_signed == 1) {
    float s = v / norm;
    if (u_scale == 1) s = sign(s) * clamp(1.0 + log(abs(s) + 1e-30) / (u_decades * log(10.0)), 0.0, 1.0);
    c = diverging(0.5 + 0.5 * clamp(s, -1.0, 1.0));
  } else {
    float t = max(v, 0.0) / norm;
    if (u_scale == 1) t = 1.0 + log(max(t, 1e-30)) / (u_decades * log(10.0));
    c = ramp(t);
  }
  vec2 px = gl_FragCoord.xy;
  if (!computed && (u_overlay == 1 || u_view == 1)) {
    // diagonal hatching in screen space, so the pattern does not depend on the cell size
    float h = mod(px.x + px.y, 7.0);
    vec3 base = u_view == 1 ? vec3(0.13, 0.14, 0.17) : vec3(0.16, 0.17, 0.20);
    c = h < 1.4 ? base + 0.12 : base;
  }
  // thin cell borders when cells are large enough to read individually
  vec2 cellpx = u_target / (u_window.zw - u_window.xy);
  if (min(cellpx.x, cellpx.y) >= 9.0) {
    vec2 f = fract(at) * cellpx;
    if (f.x < 1.0 || f.y < 1.0) c *= 0.72;
  }
  frag = vec4(c, 1.0);
}
