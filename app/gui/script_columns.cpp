// The script's column commands (script.h, script_internal.h): adding columns, variants and parameters, layer and
// head, switches, per-layer variants, painted masks, zoom and view.
#include <algorithm>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>

#include "error.h"
#include "imgui.h"
#include "registry.h"
#include "script_internal.h"
#include "state.h"

namespace attnscope::gui::script_detail {

// (state edits, as a user would make them with the widgets: one per frame)

Flow cmd_add_column(Call& c) {
  std::string v;
  c.in >> v;
  add_column(c.app, v);
  return Flow::Frame;
}

// variant COL NAME | param COL NAME VALUE | head COL H | layer COL L
Flow cmd_column_edit(Call& c) {
  App& app = c.app;
  const int i = column_arg(app, c.in);
  if (i < 0) {
    c.fail_in("bad column");
    return Flow::Frame;
  }
  Column& col = app.columns[size_t(i)];
  if (c.op == "variant") {
    std::string v;
    c.in >> v;
    if (!find_variant(v)) {
      c.fail("unknown variant " + v);
      return Flow::Frame;
    }
    col.variant = v;
    col.params = resolve_params(get_variant(v).params, v, {});
  } else if (c.op == "param") {
    std::string name;
    double v = 0;
    c.in >> name >> v;
    col.params[name] = v;
  } else if (c.op == "head") {
    int h = 0;
    c.in >> h;
    set_layer_head(app, i, col.layer, h);
  } else {
    int l = 0;
    c.in >> l;
    set_layer_head(app, i, l, col.head);
  }
  return Flow::Frame;
}

// explain COL 0|1 | per_layer COL 0|1 | convert COL 0|1 | mask_edit COL 0|1; "" or why not
std::string column_switch(Call& c, Column& col) {
  int v = 0;
  c.in >> v;
  if (c.op == "explain") {
    col.explain_open = v != 0;
    col.explain_scroll = v ? kScrollFrames : 0;
  } else if (c.op == "convert") {
    col.convert = v != 0;
  } else if (c.op == "mask_edit") {
    col.mask_edit.open = v != 0;
    col.mask_edit.scroll = v ? kScrollFrames : 0;
  } else if (set_per_layer(c.app, col, v != 0); col.per_layer != (v != 0)) {
    return "no model yet";
  }
  return "";
}

// layer_variant COL LAYER VARIANT | layer_param COL LAYER NAME VALUE; "" or why not
std::string layer_edit(Call& c, Column& col) {
  int l = -1;
  std::string name;
  c.in >> l >> name;
  if (!col.per_layer || l < 0 || l >= int(col.layers.size())) return "not a layer of a per-layer column";
  if (c.op == "layer_variant") {
    const VariantInfo* info = find_variant(name);
    if (!info) return "unknown variant " + name;
    col.layers[size_t(l)] = LayerSpec{name, resolve_params(info->params, name, {}), {}};
  } else {
    double x = 0;
    c.in >> x;
    col.layers[size_t(l)].params[name] = x;
  }
  return "";
}

// mask COL clear|causal|clip|band LO HI|rect I0 J0 I1 J1|brush I J R [erase]: the custom mask of the selected layer
std::string mask_edit(Call& c, Column& col) {
  CustomMask* m = edited_mask(c.app, col);
  if (!m) return "the selected layer is not the custom variant";
  std::string tool;
  c.in >> tool;
  std::vector<int64_t> a;
  for (int64_t x; c.in >> x;) a.push_back(x);
  c.in.clear();
  std::string erase;
  c.in >> erase;
  const bool value = erase != "erase";
  if (tool == "clear")
    clear(*m);
  else if (tool == "causal")
    *m = causal_mask(m->n);
  else if (tool == "clip")
    causal_clip(*m);
  else if (tool == "band" && a.size() == 2)
    paint_band(*m, a[0], a[1], value);
  else if (tool == "rect" && a.size() == 4)
    paint_rect(*m, a[0], a[1], a[2], a[3], value);
  else if (tool == "brush" && a.size() == 3)
    paint_brush(*m, a[0], a[1], a[2], value);
  else
    return "unknown mask edit";
  return "";
}

// explain, per_layer, mask_edit, layer_variant, layer_param, mask: "attnscope gui: script: WHY in 'COMMAND'"
Flow cmd_column_layers(Call& c) {
  const int i = column_arg(c.app, c.in);
  std::string what;
  if (i < 0)
    what = "bad column";
  else if (c.op == "layer_variant" || c.op == "layer_param")
    what = layer_edit(c, c.app.columns[size_t(i)]);
  else if (c.op == "mask")
    what = mask_edit(c, c.app.columns[size_t(i)]);
  else
    what = column_switch(c, c.app.columns[size_t(i)]);
  if (!what.empty()) c.fail_in(what);
  return Flow::Frame;
}

Flow cmd_zoom(Call& c) {  // zoom COL FACTOR: about the matrix's centre
  const int i = column_arg(c.app, c.in);
  float z = 1;
  c.in >> z;
  if (i < 0) return Flow::Frame;
  Column& col = c.app.columns[size_t(i)];
  col.zoom = std::max(1.f, z);
  if (col.shown && col.shown->ok) {
    col.x0 = float(col.shown->maps->keys) * 0.5f * (1 - 1 / col.zoom);
    col.y0 = float(col.shown->maps->queries) * 0.5f * (1 - 1 / col.zoom);
  }
  return Flow::Frame;
}

Flow cmd_knockout(Call& c) {  // knockout COL LAYER HEAD|-1 | knockout COL clear | knockout COL mode zero|mean
  const int i = column_arg(c.app, c.in);
  std::string a, b;
  c.in >> a >> b;
  if (i < 0) {
    c.fail_in("bad column");
    return Flow::Frame;
  }
  Column& col = c.app.columns[size_t(i)];
  if (a == "clear") {
    col.knockouts.clear();
    return Flow::Frame;
  }
  if (a == "mode") {
    try {
      col.knock_mode = parse_knock_mode(b);
    } catch (const Error& e) {
      c.fail_in(e.what());
    }
    return Flow::Frame;
  }
  try {
    const int layer = std::stoi(a), head = std::stoi(b);
    if (layer < 0 || head < -1) throw std::invalid_argument("range");
    toggle_knockout(col, layer, head);
  } catch (const std::exception&) {
    c.fail_in("expected LAYER HEAD|-1, clear, or mode zero|mean");
  }
  return Flow::Frame;
}

Flow cmd_view(Call& c) {  // view COL weights|mask
  const int i = column_arg(c.app, c.in);
  std::string v;
  c.in >> v;
  if (i >= 0) c.app.columns[size_t(i)].view = v == "mask" ? View::Mask : View::Weights;
  return Flow::Frame;
}

}  // namespace attnscope::gui::script_detail
