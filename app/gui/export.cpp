// The export dialog: the figure of the comparison, a column's heatmap or sparsity mask, or the difference window,
// made by session::figure_from_maps exactly as `attnscope render` makes it, encoded and written atomically on a
// background thread.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "error.h"
#include "imgui.h"
#include "imgui_stdlib.h"
#include "registry.h"
#include "scene_figure.h"
#include "safetensors.h"
#include "state.h"
#include "studio.h"
#include "views.h"
#include "widgets.h"

namespace attnscope::gui {

namespace {

const char* const kFormatNames[] = {"PNG", "SVG", "CSV", "NPY", "JSON"};
const char* const kFormatHints[] = {
    "the figure as an image: title, character labels, colour bar (scale 2x for slides)",
    "the figure as vector text and axes, each matrix an embedded image",
    "the raw matrices: one row per query, with the panels' titles",
    "the raw matrices as a NumPy array (np.load), shape as the JSON's \"shape\"",
    "the raw matrices with their labels, shape and style",
};

bool current(const Column& c) { return c.shown && c.shown->ok && c.shown->seq == c.seq; }

std::string slug(const std::string& s) {
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch))
      out += char(std::tolower(ch));
    else if (!out.empty() && out.back() != '-')
      out += '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

std::string where(int layer, int head) {
  return head < 0 ? "grid" : "L" + std::to_string(layer) + "H" + std::to_string(head);
}

// A file name (without extension) for an export of `source`.
std::string export_name(const App& app, ExportSource source, int column) {
  const int n = int(app.columns.size());
  auto label = [&](int i) { return slug(column_label(scene_column(app.columns[size_t(std::clamp(i, 0, n - 1))]))); };
  switch (source) {
    case ExportSource::Comparison: {
      if (!app.scenes.path.empty()) return std::filesystem::path(app.scenes.path).stem().string();
      std::string s = "comparison";
      for (int i = 0; i < n; ++i) s += "-" + label(i);
      return s;
    }
    case ExportSource::Heatmap:
    case ExportSource::Sparsity: {
      const Column& c = app.columns[size_t(std::clamp(column, 0, n - 1))];
      return label(column) + (source == ExportSource::Sparsity ? "-mask-" : "-") + where(c.layer, c.head);
    }
    case ExportSource::Flow: return label(column) + "-flow";
    case ExportSource::Difference:
      return "diff-" + label(app.view.diff_a) + "-" + label(app.view.diff_b) + "-" +
             where(app.diff.layer, app.diff.head);
  }
  return "attnscope";
}

std::string default_dir() {
  const std::string pictures = pictures_dir();
  if (!pictures.empty()) return pictures;
  std::error_code ec;
  return std::filesystem::current_path(ec).string();
}

std::string expand_home(const std::string& p) {
  const char* home = std::getenv("HOME");
  if (home && (p == "~" || p.rfind("~/", 0) == 0)) return home + p.substr(1);
  return p;
}

std::string with_extension(const std::string& path, ExportFormat f) {
  std::filesystem::path p(path);
  p.replace_extension(export_extension(f));
  return p.string();
}

std::string source_label(const App& app, ExportSource source, int column) {
  const int n = int(app.columns.size());
  auto name = [&](int i) {
    return std::to_string(i + 1) + ": " + column_label(scene_column(app.columns[size_t(std::clamp(i, 0, n - 1))]));
  };
  switch (source) {
    case ExportSource::Comparison:
      return "the whole comparison (" + std::to_string(n) + " columns" +
             (app.view.show_diff ? " and the difference)" : ")");
    case ExportSource::Heatmap: return "column " + name(column) + ", heatmap";
    case ExportSource::Sparsity: return "column " + name(column) + ", computed pairs";
    case ExportSource::Flow: return "column " + name(column) + ", attention flow";
    case ExportSource::Difference:
      return "the difference window (" + name(app.view.diff_a) + " vs " + name(app.view.diff_b) + ")";
  }
  return "";
}

void report(App& app, const std::string& msg, bool error) {
  app.exporter.message = msg;
  app.exporter.message_error = error;
  app.log.push_back("export: " + msg);
  if (app.log_events) {
    std::printf("t=%.3f s  export: %s\n", seconds_since_start(app), msg.c_str());
    std::fflush(stdout);
  }
}

// The column's attention flow as a one-panel figure: the rollout [T, T] the heads row draws, labelled like its
// heatmap.
bool flow_figure(const App& app, int column, render::Figure* f, render::Style* style, std::string* why) {
  const int n = int(app.columns.size());
  if (column < 0 || column >= n) {
    *why = "there is no column " + std::to_string(column + 1);
    return false;
  }
  const Column& c = app.columns[size_t(column)];
  const std::string label = column_label(scene_column(c));
  int64_t T = 0, layers = 0;
  std::vector<float> rollout = column_rollout(c, &T, &layers);  // [T, T]
  if (!current(c) || rollout.empty() || size_t(T) != c.shown->tokens.size()) {
    *why = "column " + std::to_string(column + 1) + " (" + label +
           ") has no attention flow of its current text yet: its heads row computes it once the text rests";
    return false;
  }
  const Tokenizer& tok = app.model->tokenizer();
  render::Panel p;
  p.kind = render::PanelKind::Weights;
  p.rows = p.cols = T;
  p.values = std::move(rollout);
  for (int64_t id : c.shown->tokens) p.row_labels.push_back(render::char_label(uint8_t(tok.symbol(id))));
  p.col_labels = p.row_labels;
  p.caption = "rollout (Abnar & Zuidema, 2020): heads averaged, 0.5 A + 0.5 I, multiplied through " +
              std::to_string(layers) + " layers; row i: where query i's input came from";
  *f = render::Figure{};
  f->title = label + " \u2014 attention flow";
  f->subtitle = std::to_string(T) + " characters";
  f->panels.push_back(std::move(p));
  f->data_shape = {T, T};
  style->colormap = app.view.colormap == render::Colormap::Diverging ? render::Colormap::Viridis : app.view.colormap;
  style->scale = app.view.scale;
  style->zoom = app.scenes.zoom;
  style->log_decades = app.view.log_decades;
  return true;
}

}  // namespace

const char* export_extension(ExportFormat f) {
  static const char* const ext[] = {".png", ".svg", ".csv", ".npy", ".json"};
  return ext[int(f)];
}

bool export_figure(const App& app, ExportSource source, int column, render::Figure* f, render::Style* style,
                   std::string* why) {
  if (!app.model) {
    *why = "the model is still loading";
    return false;
  }
  const int n = int(app.columns.size());
  Scene s = scene_from_app(app, nullptr);
  std::vector<const Column*> from;  // the GUI column of each scene column
  switch (source) {
    case ExportSource::Flow: return flow_figure(app, column, f, style, why);
    case ExportSource::Comparison:  // what File > Save scene writes: the columns, and the difference window's A - B
      for (const Column& c : app.columns) from.push_back(&c);
      if (s.columns.size() > from.size()) from.push_back(&app.columns[size_t(std::clamp(app.view.diff_b, 0, n - 1))]);
      break;
    case ExportSource::Heatmap:
    case ExportSource::Sparsity: {
      s.title.clear();
      s.columns.clear();
      if (column < 0 || column >= n) {
        *why = "there is no column " + std::to_string(column + 1);
        return false;
      }
      SceneColumn sc = scene_column(app.columns[size_t(column)]);
      sc.view = source == ExportSource::Sparsity ? render::PanelKind::Mask : render::PanelKind::Weights;
      s.columns.push_back(sc);
      from.push_back(&app.columns[size_t(column)]);
      break;
    }
    case ExportSource::Difference: {
      const int a = std::clamp(app.view.diff_a, 0, n - 1), b = std::clamp(app.view.diff_b, 0, n - 1);
      if (a == b) {
        *why = "the difference window compares a column with itself: pick two columns";
        return false;
      }
      // as `attnscope render --compare A,B --view diff`: A, B and A - B at the difference window's layer and head
      s.title.clear();
      s.columns.clear();
      for (int i : {a, b, b}) {
        SceneColumn sc = scene_column(app.columns[size_t(i)]);
        sc.layer = app.diff.layer;
        sc.head = app.diff.head;
        sc.view = render::PanelKind::Weights;
        s.columns.push_back(sc);
        from.push_back(&app.columns[size_t(i)]);
      }
      s.columns.back().view = render::PanelKind::Diff;
      if (app.view.diff_signed) s.colormap = render::Colormap::Diverging;
      break;
    }
  }
  std::vector<session::ColumnMaps> runs;
  for (size_t i = 0; i < s.columns.size(); ++i) {
    const Column& c = *from[i];
    if (!current(c)) {
      const int index = int(&c - app.columns.data());
      *why = "column " + std::to_string(index + 1) + " (" + column_label(s.columns[i]) + ") has no current result" +
             (c.shown && !c.shown->ok && c.shown->seq == c.seq ? ": " + c.shown->error : " yet");
      return false;
    }
    const AttentionMaps& m = *c.shown->maps;
    const AttentionMaps& ref = *(runs.empty() ? &m : runs.front().maps);
    if (m.layers != ref.layers || m.heads != ref.heads || m.queries != ref.queries || m.keys != ref.keys) {
      *why =
          "the columns' matrices differ in shape (a cross-attention column reads the second text): export "
          "them one at a time";
      return false;
    }
    runs.push_back({&s.columns[i], &m});
  }
  const Tokenizer& tok = app.model->tokenizer();
  const ColumnResult& first = *from.front()->shown;
  const VariantInfo* info = find_variant(from.front()->variant);
  std::vector<std::string> rows, cols;
  for (int64_t id : first.tokens) rows.push_back(render::char_label(uint8_t(tok.symbol(id))));
  for (int64_t id : info && info->needs_kv_text ? first.kv_tokens : first.tokens)
    cols.push_back(render::char_label(uint8_t(tok.symbol(id))));
  *f = session::figure_from_maps(s, runs, rows, cols, tok.decode(first.tokens));
  style->colormap = s.colormap;
  style->scale = s.scale;
  style->zoom = s.zoom;
  style->log_decades = app.view.log_decades;
  return true;
}

bool export_running(const App& app) { return app.exporter.job != nullptr; }

bool start_export(App& app, const std::string& path_in, ExportFormat format, int png_scale, bool overwrite,
                  std::string* why) {
  if (export_running(app)) {
    *why = "the previous export is still being written";
    return false;
  }
  const std::string path = expand_home(path_in);
  if (path.empty()) {
    *why = "give a file name";
    return false;
  }
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    *why = "'" + path + "' is a directory: give a file name";
    return false;
  }
  if (!overwrite && std::filesystem::exists(path, ec)) {
    *why = "'" + path + "' exists: confirm to overwrite it";
    return false;
  }
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  if (dir == std::filesystem::path(default_dir()) && !std::filesystem::exists(dir, ec) &&
      !make_user_dir(dir.string(), why))  // the default folder is ours to make
    return false;
  if (!std::filesystem::is_directory(dir, ec)) {
    *why = "cannot write '" + path + "': the folder '" + dir.string() + "' does not exist";
    return false;
  }
  if (access(dir.c_str(), W_OK) != 0) {
    *why = "cannot write '" + path + "': the folder '" + dir.string() + "' is not writable";
    return false;
  }
  render::Figure f;
  render::Style style;
  if (!export_figure(app, app.exporter.source, app.exporter.column, &f, &style, why)) return false;
  style.png_scale = std::clamp(png_scale, 1, 4);
  std::string size;
  try {
    if (format == ExportFormat::Png || format == ExportFormat::Svg) {
      int w = 0, h = 0;
      render::figure_size(f, style, &w, &h);
      size = std::to_string(w) + " x " + std::to_string(h) + " px, ";
    }
  } catch (const Error& e) {
    *why = e.what();
    return false;
  }
  const size_t panels = f.panels.size();
  app.exporter.job_path = path;
  app.exporter.message = "writing " + path + " ...";
  app.exporter.message_error = false;
  using WriteJob = session::Job<ExportState::Written>;
  app.exporter.job = std::make_unique<WriteJob>([f = std::move(f), style, format, path, size, panels](auto& c) {
    c.progress(0, 1, "writing " + path);
    const std::string bytes = format == ExportFormat::Png   ? render::figure_png(f, style)
                              : format == ExportFormat::Svg ? render::figure_svg(f, style)
                              : format == ExportFormat::Csv ? render::figure_csv(f)
                              : format == ExportFormat::Npy ? render::figure_npy(f)
                                                            : render::figure_json(f, style);
    write_file_atomic(path, bytes);  // an Error ends the job with its message
    c.update([&](ExportState::Written& w) {
      w = {true, "wrote " + path + " (" + size + std::to_string(panels) + (panels == 1 ? " panel)" : " panels)")};
    });
  });
  return true;
}

void poll_export(App& app) {
  ExportState& e = app.exporter;
  if (!e.job || e.job->running()) return;
  const ExportState::Written w = e.job->snapshot();
  const std::string error = e.job->error();
  e.job.reset();
  if (!error.empty())
    report(app, "failed: " + error, true);
  else
    report(app, w.message, !w.ok);
}

void draw_column_export_menu(App& app, int column) {
  if (!ImGui::BeginPopupContextWindow("export_menu")) return;
  if (ImGui::MenuItem("Export this heatmap...")) open_export_dialog(app, ExportSource::Heatmap, column);
  if (ImGui::MenuItem("Export its computed pairs...")) open_export_dialog(app, ExportSource::Sparsity, column);
  if (ImGui::MenuItem("Export its attention flow...")) open_export_dialog(app, ExportSource::Flow, column);
  if (ImGui::MenuItem("Export the whole comparison...")) open_export_dialog(app, ExportSource::Comparison, 0);
  ImGui::EndPopup();
}

void open_export_dialog(App& app, ExportSource source, int column) {
  ExportState& e = app.exporter;
  e.source = source;
  e.column = column;
  e.want_open = true;
  e.message.clear();
  e.path = default_dir() + "/" + export_name(app, source, column) + export_extension(e.format);
}

namespace {

// What to export: the comparison, a column's heatmap or computed pairs, or the difference window. A path that is
// still the default name follows the choice.
void draw_source_picker(App& app, ExportState& e) {
  const int n = int(app.columns.size());
  if (!ImGui::BeginCombo("##what", source_label(app, e.source, e.column).c_str())) return;
  auto item = [&](ExportSource s, int col) {
    if (ImGui::Selectable(
            source_label(app, s, col).c_str(),
            e.source == s && (s == ExportSource::Comparison || s == ExportSource::Difference || e.column == col))) {
      const bool renamed =
          e.path == default_dir() + "/" + export_name(app, e.source, e.column) + export_extension(e.format);
      e.source = s;
      e.column = col;
      if (renamed) e.path = default_dir() + "/" + export_name(app, s, col) + export_extension(e.format);
    }
  };
  item(ExportSource::Comparison, 0);
  for (int i = 0; i < n; ++i) item(ExportSource::Heatmap, i);
  for (int i = 0; i < n; ++i) item(ExportSource::Sparsity, i);
  for (int i = 0; i < n; ++i) item(ExportSource::Flow, i);
  if (n >= 2) item(ExportSource::Difference, 0);
  ImGui::EndCombo();
}

// The format (the path's extension follows it) and the PNG scale.
void draw_format_picker(ExportState& e) {
  const float fs = ImGui::GetFontSize();
  ImGui::TextColored(kDim, "format");
  ImGui::SameLine(fs * 5);
  for (int i = 0; i < 5; ++i) {
    if (i) ImGui::SameLine();
    if (ImGui::RadioButton(kFormatNames[i], int(e.format) == i)) {
      e.format = ExportFormat(i);
      e.path = with_extension(e.path, e.format);
    }
    tooltip(kFormatHints[i]);
  }
  ImGui::BeginDisabled(e.format != ExportFormat::Png);
  ImGui::TextColored(kDim, "scale");
  ImGui::SameLine(fs * 5);
  for (int s = 1; s <= 4; ++s) {
    if (s > 1) ImGui::SameLine();
    const std::string l = std::to_string(s) + "\xC3\x97";  // ×
    if (ImGui::RadioButton(l.c_str(), e.png_scale == s)) e.png_scale = s;
  }
  ImGui::EndDisabled();
}

// What the file will hold (panels, title, pixel size or matrix shape), or why there is nothing to export yet.
bool draw_export_preview(const App& app, const ExportState& e) {
  render::Figure f;
  render::Style style;
  std::string why;
  const bool ready = export_figure(app, e.source, e.column, &f, &style, &why);
  if (!ready) {
    ImGui::TextColored(kAmber, "%s", why.c_str());
    return false;
  }
  style.png_scale = e.png_scale;
  std::string info = std::to_string(f.panels.size()) + (f.panels.size() == 1 ? " panel" : " panels") +
                     " \xC2\xB7 \xE2\x80\x9C" + f.title + "\xE2\x80\x9D";
  if (e.format == ExportFormat::Png || e.format == ExportFormat::Svg) {
    try {
      int w = 0, h = 0;
      render::figure_size(f, style, &w, &h);
      info += " \xC2\xB7 " + std::to_string(w) + " \xC3\x97 " + std::to_string(h) + " px";
    } catch (const Error& err) {
      info += " \xC2\xB7 too large: " + std::string(err.what());
    }
  } else {
    std::string shape;
    for (int64_t d : f.data_shape) shape += (shape.empty() ? "" : " \xC3\x97 ") + std::to_string(d);
    info += " \xC2\xB7 matrix " + shape;
  }
  ImGui::PushTextWrapPos(0);
  ImGui::TextColored(kDim, "%s", info.c_str());
  ImGui::PopTextWrapPos();
  return true;
}

// "Replace the file?": an existing file is overwritten only when confirmed.
void draw_overwrite_popup(App& app, ExportState& e) {
  const float fs = ImGui::GetFontSize();
  if (!ImGui::BeginPopupModal("Replace the file?", nullptr,
                              ImGuiWindowFlags_AlwaysAutoResize | ImGuiWindowFlags_NoSavedSettings))
    return;
  ImGui::Text("'%s' exists.", expand_home(e.path).c_str());
  ImGui::TextColored(kDim, "Overwrite it with this export?");
  if (ImGui::Button("Overwrite", ImVec2(fs * 7, 0))) {
    std::string err;
    if (!start_export(app, e.path, e.format, e.png_scale, true, &err)) report(app, err, true);
    e.confirm_overwrite = false;
    ImGui::CloseCurrentPopup();
  }
  mark_target(app, "export_overwrite");
  ImGui::SameLine();
  if (ImGui::Button("Keep it", ImVec2(fs * 7, 0))) {
    e.confirm_overwrite = false;
    report(app, "kept the existing '" + expand_home(e.path) + "'", false);
    ImGui::CloseCurrentPopup();
  }
  mark_target(app, "export_keep");
  ImGui::EndPopup();
}

}  // namespace

void draw_export_dialog(App& app) {
  ExportState& e = app.exporter;
  const float fs = ImGui::GetFontSize();
  if (e.want_open) {
    ImGui::OpenPopup("Export figure");
    e.want_open = false;
    e.open = true;
  }
  ImGui::SetNextWindowSize(ImVec2(fs * 40, 0), ImGuiCond_Always);  // height: fitted to the contents every frame
  if (!ImGui::BeginPopupModal("Export figure", &e.open, ImGuiWindowFlags_NoSavedSettings)) return;

  ImGui::TextColored(kDim, "what");
  ImGui::SameLine(fs * 5);
  ImGui::SetNextItemWidth(-FLT_MIN);
  draw_source_picker(app, e);
  draw_format_picker(e);

  ImGui::TextColored(kDim, "file");
  ImGui::SameLine(fs * 5);
  ImGui::SetNextItemWidth(-FLT_MIN);
  ImGui::InputText("##path", &e.path);
  mark_target(app, "export_path");

  // what the file will hold
  const bool ready = draw_export_preview(app, e);

  ImGui::Spacing();
  const bool running = export_running(app);
  ImGui::BeginDisabled(!ready || running);
  if (ImGui::Button(running ? "Writing..." : "Export", ImVec2(fs * 7, 0))) {
    std::string err;
    std::error_code ec;
    if (std::filesystem::exists(expand_home(e.path), ec) && !std::filesystem::is_directory(expand_home(e.path), ec)) {
      e.confirm_overwrite = true;
      ImGui::OpenPopup("Replace the file?");
    } else if (!start_export(app, e.path, e.format, e.png_scale, false, &err)) {
      report(app, err, true);
    }
  }
  mark_target(app, "export_button");
  ImGui::EndDisabled();
  ImGui::SameLine();
  if (ImGui::Button("Close", ImVec2(fs * 6, 0))) {
    e.open = false;
    ImGui::CloseCurrentPopup();
  }
  if (!e.message.empty()) {
    ImGui::PushTextWrapPos(0);
    ImGui::TextColored(e.message_error ? kRed : running ? kAmber : kGreen, "%s", e.message.c_str());
    ImGui::PopTextWrapPos();
  }
  draw_overwrite_popup(app, e);
  ImGui::EndPopup();
}

}  // namespace attnscope::gui
