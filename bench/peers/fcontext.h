/*
 * Boost.Context's fcontext, loaded at run time from libboost_context
 * (Debian's libboost-context-dev), so that the benchmarks build without it
 * and skip it with a note where it is missing. jump_fcontext and
 * make_fcontext are extern "C" in Boost: callable from C as they are.
 */
#ifndef WEFT_BENCH_FCONTEXT_H
#define WEFT_BENCH_FCONTEXT_H

#include <dlfcn.h>
#include <stddef.h>

typedef void *fcontext_t;
typedef struct {
  fcontext_t fctx;
  void *data;
} transfer_t;

struct fcontext_api {
  transfer_t (*jump)(fcontext_t to, void *vp);
  fcontext_t (*make)(void *sp, size_t size, void (*fn)(transfer_t));
};

/* Returns NULL when loaded, or why it could not be. */
static inline const char *fcontext_load(struct fcontext_api *api) {
  void *h = dlopen("libboost_context.so", RTLD_NOW);
  if (!h)
    return "libboost-context-dev not installed (make bench-peers)";
  api->jump = (transfer_t(*)(fcontext_t, void *))dlsym(h, "jump_fcontext");
  api->make = (fcontext_t(*)(void *, size_t, void (*)(transfer_t)))dlsym(
      h, "make_fcontext");
  if (!api->jump || !api->make)
    return "libboost_context has no jump_fcontext/make_fcontext";
  return NULL;
}

#endif
