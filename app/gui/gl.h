#pragma once
// OpenGL 3.3 core entry points straight from libGL (Mesa exports them): no loader of our own, and never
// Dear ImGui's internal one.
#ifndef GL_GLEXT_PROTOTYPES
#define GL_GLEXT_PROTOTYPES 1
#endif
#include <GL/gl.h>
#include <GL/glext.h>
