// The status bar: device, threads, last compute, resident memory, frame time, cached models, settings messages.
#include <algorithm>
#include <cstdio>
#include <unistd.h>

#include "imgui.h"
#include "registry.h"
#include "state.h"
#include "views.h"
#include "widgets.h"

namespace attnscope::gui {

namespace {

long rss_bytes() {  // resident set size from /proc/self/statm (pages)
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return -1;
  long size = 0, resident = 0;
  const int n = std::fscanf(f, "%ld %ld", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * sysconf(_SC_PAGESIZE) : -1;
}

}  // namespace

void draw_status_bar(App& app) {
  ImGui::Separator();
  // Measurements refresh once a second: a number that changed every frame would make every frame a new picture
  // (gui_main.cpp draws only frames whose picture changed).
  const auto now = Clock::now();
  if (app.status_line.empty() || now - app.status_at >= std::chrono::seconds(1)) {
    app.status_at = now;
    const std::string dev = app.model ? app.model->device_name() : "no model";
    std::vector<double> f(app.drawn_ms.begin(), app.drawn_ms.end());
    std::sort(f.begin(), f.end());
    const double frame = f.empty() ? 0 : f[f.size() / 2];
    const long rss = rss_bytes();
    char line[512];
    std::snprintf(line, sizeof line,
                  "device %s  \xC2\xB7  %lld threads  \xC2\xB7  last compute %.1f ms  \xC2\xB7  memory %s  "
                  "\xC2\xB7  frame %.1f ms (drawn %d of %d)  \xC2\xB7  %zu models cached",
                  dev.c_str(), (long long)app.worker->threads(), app.last_compute_ms,
                  rss < 0 ? "?" : human_bytes(double(rss)).c_str(), frame, app.frames_drawn, app.frame,
                  app.worker->cached_models());
    app.status_line = line;
  }
  ImGui::TextColored(kDim, "%s", app.status_line.c_str());
  if (!app.settings_message.empty()) {
    ImGui::SameLine(0, ImGui::GetFontSize());
    ImGui::TextColored(kAmber, "%s", app.settings_message.c_str());
  }
}

}  // namespace attnscope::gui
