#include "asan.h"

static __thread weft__tools_ctx *switch_from;

__attribute__((noipa)) weft__tools_ctx **weft__asan_switch_from(void) {
  return &switch_from;
}
