/*
 * BenchmarkGenCreate/<impl>: create a generator, run it to completion, free
 * it (the stack cache warm). Peers: ucontext and Boost's fcontext on a
 * preallocated stack, the cheapest each can do.
 *
 * BenchmarkGenMany/mode=<mode>/weft: generators alive at once, each
 * resumed once (it yields, and waits there); ns/op per generator, resident
 * bytes per generator (B/gen), and the process's memory-map entries at the
 * peak (maps) against Linux's default vm.max_map_count of 65530.
 *   mode=own     one million, each on a stack of its own
 *   mode=copied  ten million copied-stack generators (weft_gen_opts.copied):
 *                one shared stack, each one's frames copied off it into a
 *                buffer of their size when the next one runs
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <ucontext.h>
#include <unistd.h>
#include <weft.h>

#include "bench.h"
#include "peers/fcontext.h"

static void *returns_at_once(void *arg) { return arg; }

static bool create_weft(uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    weft_gen *g;
    if (weft_gen_new(&g, returns_at_once, NULL, NULL) != 0)
      return false;
    weft_gen_next(g, NULL);
    weft_gen_free(g);
  }
  return true;
}

enum { STACK = 64 << 10 };
static char *peer_stack;

static ucontext_t uc_main, uc_gen;
static void uc_body(void) { swapcontext(&uc_gen, &uc_main); }

static bool create_ucontext(uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    getcontext(&uc_gen);
    uc_gen.uc_stack.ss_sp = peer_stack;
    uc_gen.uc_stack.ss_size = STACK;
    uc_gen.uc_link = NULL;
    makecontext(&uc_gen, uc_body, 0);
    swapcontext(&uc_main, &uc_gen);
  }
  return true;
}

static struct fcontext_api fc;
static void fc_body(transfer_t t) { fc.jump(t.fctx, NULL); }

static bool create_fcontext(uint64_t n) {
  for (uint64_t i = 0; i < n; i++) {
    fcontext_t c = fc.make(peer_stack + STACK, STACK, fc_body);
    fc.jump(c, NULL);
  }
  return true;
}

static long resident_bytes(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
      resident = 0;
    fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE);
}

static int map_count(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  int lines = 0, c;
  if (!f)
    return -1;
  while ((c = fgetc(f)) != EOF)
    lines += c == '\n';
  fclose(f);
  return lines;
}

static void *yield_once(void *arg) {
  weft_gen_yield(arg, NULL);
  return NULL;
}

static void gen_many(const char *name, int n, bool copied) {
  if (!bench_selected(name))
    return;
  const weft_gen_opts o = {.copied = copied};
  weft_gen **g = malloc((size_t)n * sizeof *g);
  if (!g)
    return;
  long rss0 = resident_bytes();
  double t0 = bench_now();
  for (int i = 0; i < n; i++) {
    if (weft_gen_new(&g[i], yield_once, NULL, &o) != 0) {
      printf("# %s: failed at generator %d\n", name, i);
      for (int j = 0; j < i; j++)
        weft_gen_free(g[j]);
      free(g);
      return;
    }
    weft_gen_next(g[i], NULL);
  }
  double dt = bench_now() - t0;
  long rss1 = resident_bytes();
  int maps = map_count();
  printf("%-40s %12d %10.1f ns/op %8ld B/gen %6d maps\n", name, n, dt * 1e9 / n,
         (rss1 - rss0 - (long)((size_t)n * sizeof *g)) / n, maps);
  fflush(stdout);
  for (int i = 0; i < n; i++)
    weft_gen_free(g[i]);
  free(g);
}

int main(void) {
  peer_stack = malloc(STACK);
  const char *fc_skip = fcontext_load(&fc);
  struct bench_impl impls[] = {
      {"BenchmarkGenCreate/weft", create_weft, NULL},
      {"BenchmarkGenCreate/ucontext", create_ucontext, NULL},
      {"BenchmarkGenCreate/boost-fcontext", create_fcontext, fc_skip},
  };
  bench_group(impls, sizeof impls / sizeof *impls);
  gen_many("BenchmarkGenMany/mode=own/weft", 1000000, false);
  gen_many("BenchmarkGenMany/mode=copied/weft", 10000000, true);
  return 0;
}
