#include "asan.h"

static __thread struct weft__asan_leaving leaving;

__attribute__((noipa)) struct weft__asan_leaving *weft__asan_leaving(void) {
  return &leaving;
}
