#include "asan.h"

__thread weft__tools_ctx *weft__asan_switch_from
    __attribute__((tls_model("initial-exec")));
