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
  const std::string dev = app.model ? app.model->device_name() : "no model";
  std::vector<double> f(app.frame_ms.begin(), app.frame_ms.end());
  std::sort(f.begin(), f.end());
  const double frame = f.empty() ? 0 : f[f.size() / 2];
  const long rss = rss_bytes();
  ImGui::TextColored(kDim,
                     "device %s  \xC2\xB7  %lld threads  \xC2\xB7  last compute %.1f ms  \xC2\xB7  memory %s  "
                     "\xC2\xB7  frame %.1f ms  \xC2\xB7  %zu models cached",
                     dev.c_str(), (long long)app.worker->threads(), app.last_compute_ms,
                     rss < 0 ? "?" : human_bytes(double(rss)).c_str(), frame, app.worker->cached_models());
  if (!app.settings_message.empty()) {
    ImGui::SameLine(0, ImGui::GetFontSize());
    ImGui::TextColored(kAmber, "%s", app.settings_message.c_str());
  }
}

}  // namespace attnscope::gui
