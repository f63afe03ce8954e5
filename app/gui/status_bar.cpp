// The status bar: device, threads, last compute, resident memory, frame time, cached models, settings messages.
#include <algorithm>
#include <cstdio>
#include <unistd.h>

#include "bench.h"
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
  // The ever-changing measurements (memory, frame time, frame counts) are sampled once a second: numbers that
  // changed every frame would make every frame a new picture (gui_main.cpp draws only frames whose picture changed).
  // The rest (device, threads, last compute, cached models) is shown as it is now.
  const auto now = Clock::now();
  StatusSample& s = app.status_sample;
  if (s.at == Clock::time_point{} || now - s.at >= std::chrono::seconds(1)) {
    s.at = now;
    s.frame_ms = app.drawn_ms.empty() ? 0 : quantile({app.drawn_ms.begin(), app.drawn_ms.end()}, 0.5);
    s.rss = rss_bytes();
    s.drawn = app.frames_drawn;
    s.frames = app.frame;
  }
  const std::string dev = app.model ? app.model->device_name() : "no model";
  const int columns = app.worker->column_threads();  // computed at once, each on `threads` LibTorch threads
  const int64_t threads = app.worker->threads();
  char frame[64] = "frame: measuring";  // nothing drawn yet at the last sample
  if (s.drawn > 0) std::snprintf(frame, sizeof frame, "frame %.1f ms (drawn %d of %d)", s.frame_ms, s.drawn, s.frames);
  ImGui::TextColored(kDim,
                     "device %s  \xC2\xB7  %d column%s at once, %lld thread%s each  \xC2\xB7  last compute %.1f ms  "
                     "\xC2\xB7  memory %s  \xC2\xB7  %s  \xC2\xB7  %zu models cached",
                     dev.c_str(), columns, columns == 1 ? "" : "s", (long long)threads, threads == 1 ? "" : "s",
                     app.last_compute_ms, s.rss < 0 ? "?" : human_bytes(double(s.rss)).c_str(), frame,
                     app.worker->cached_models());
  if (!app.settings_message.empty()) {
    ImGui::SameLine(0, ImGui::GetFontSize());
    ImGui::TextColored(kAmber, "%s", app.settings_message.c_str());
  }
}

}  // namespace attnscope::gui
