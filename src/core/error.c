/*
 * weft_strerror and weft_version.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <string.h>
#include <weft/core.h>

#define STR2(x) #x
#define STR(x)  STR2(x)

const char *weft_strerror(int code) {
  if (code == 0)
    return "Success";
  /* strerrordesc_np returns a static string and never touches locale or
   * errno: safe from any thread and from a signal handler, unlike
   * strerror. */
  if (code == INT_MIN)
    return "Unknown error"; /* -INT_MIN does not exist; no errno is that */
  const char *s = strerrordesc_np(code < 0 ? -code : code);
  return s ? s : "Unknown error";
}

const char *weft_version(void) {
  return STR(WEFT_VERSION_MAJOR) "." STR(WEFT_VERSION_MINOR) "." STR(
      WEFT_VERSION_PATCH);
}
