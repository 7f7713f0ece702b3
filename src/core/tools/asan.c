#include "asan.h"

static __thread struct weft__asan_leaving leaving;

/* Out of line, and opaque to the optimizer (the empty asm may do anything
 * to the pointer), so that a caller cannot keep an address it computed
 * before a switch: it asks again after it. (gcc's noipa says the same, but
 * clang does not know it.) */
__attribute__((noinline)) struct weft__asan_leaving *weft__asan_leaving(void) {
  struct weft__asan_leaving *l = &leaving;
  __asm__ volatile("" : "+r"(l));
  return l;
}
