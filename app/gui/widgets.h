#pragma once
// Small widgets and colours shared by the window's panels (panels.cpp) and the generation view (generation.cpp).
#include <string>

#include "imgui.h"

namespace attnscope::gui {

inline const ImVec4 kRed(0.95f, 0.36f, 0.33f, 1), kAmber(0.98f, 0.72f, 0.28f, 1), kGreen(0.45f, 0.82f, 0.50f, 1),
    kDim(0.62f, 0.64f, 0.70f, 1), kAccent(0.40f, 0.65f, 1.0f, 1);

void tooltip(const char* s);             // wrapped, for the last item when hovered
std::string human_bytes(double b);       // "512 B", "12.0 KiB", "3.25 MiB"
std::string glyph(char c);               // a character as an axis label (newline, space and tabs made visible)
void section(const char* title);         // a row's title over a thin rule

}  // namespace attnscope::gui
