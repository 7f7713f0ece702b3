/*
 * Coroutine stacks. See stack.h for the contract and docs/stacks.md for the
 * reasons.
 *
 * Memory layout: a slab is one anonymous MAP_NORESERVE mapping holding
 * `count` stacks of one size class, each preceded by its guard:
 *
 *     [guard][stack 0][guard][stack 1] … [guard][stack count-1]
 *
 * Nothing is committed until touched, and the kernel merges adjacent slabs
 * into one mapping when it can, so the map entries a million stacks need
 * stay in the hundreds.
 *
 * The cache, one per size class, each under its own mutex:
 *  - warm: stacks given back and not trimmed, linked through a node at the
 *    top of each stack (the page a coroutine touches first, so reusing a warm
 *    stack costs no page fault);
 *  - cold: stacks whose pages were given back to the kernel
 *    (MADV_DONTNEED), listed in a plain array so that listing them touches
 *    none of their pages;
 *  - fresh: the not-yet-used tail of the newest slab.
 * Warm stacks beyond WARM_MAX are trimmed to cold as they come back, in
 * batches of TRIM_BATCH: a batch is sorted by address and each run of
 * neighbours (the guard between them included) is given back in one
 * madvise, since one call per stack costs several microseconds in TLB
 * flushes alone. A stack waiting in a batch is handed out again, untrimmed,
 * before the cold ones.
 *
 * In front of the classes, each thread keeps a few warm stacks of the
 * default size (the size nearly every coroutine has) in a thread-local
 * cache that takes no lock: a thread that creates and frees coroutines in a
 * loop never touches the shared cache. A thread's leftovers go back to the
 * shared cache when it exits.
 *
 * Slabs are never unmapped: address space is cheap on 64-bit systems. (A
 * coroutine handle used after it was let go is the program's bug, which
 * ASan builds catch: see coro.c.)
 */
#define _GNU_SOURCE
#include "stack.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "valgrind.h"
#include WEFT_TOOLS_H

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13; older headers lack it */
#endif

#define CLS_MIN        14 /* 16 KiB */
#define CLS_MAX        30 /* 1 GiB */
#define NCLS           (CLS_MAX - CLS_MIN + 1)
#define DEFAULT_SIZE   ((size_t)128 << 10)
#define SLAB_BYTES     ((size_t)256 << 20)
#define SLAB_MAX_COUNT 1024
#define GUARD_MIN      ((size_t)16 << 10)

const uint64_t weft__stack_canary = 0x7765667453544b21ull; /* "weftSTK!" */

/* Lives in the top bytes of a warm stack. */
struct warm_node {
  struct warm_node *next;
  uint8_t kind;
};
_Static_assert(sizeof(struct warm_node) <= WEFT__STACK_NODE_BYTES,
               "the node must fit where stack.h says");

enum { TRIM_BATCH = 64 };

struct size_class {
  pthread_mutex_t lock;
  struct warm_node *warm; /* stacks ready for reuse, most recent first */
  size_t nwarm;
  uintptr_t *cold; /* lo | kind of each trimmed stack */
  size_t ncold, cold_cap;
  char *fresh;                /* the next never-used stack's guard, or NULL */
  size_t fresh_left;          /* never-used stacks left in the newest slab */
  uintptr_t trim[TRIM_BATCH]; /* lo | kind of stacks to trim together */
  size_t ntrim;
};

static struct {
  pthread_once_t once;
  int default_cls;         /* the class of weft__stack_default_size() */
  pthread_key_t flush_key; /* its destructor empties a thread's cache */
  size_t page;
  size_t guard;       /* bytes of guard below each stack */
  int mode;           /* WEFT__GUARD_REGION or WEFT__GUARD_PAGE */
  atomic_long budget; /* guard pages mprotect may still make */
  struct size_class cls[NCLS];
} S = {.once = PTHREAD_ONCE_INIT};

/* Guard regions exist when installing one succeeds and the kernel then
 * refuses to read through it: write(2) from a guarded page fails with
 * EFAULT. (Emulators such as qemu-user accept the madvise but ignore it;
 * the write tells.) */
static bool guard_regions_work(void) {
  size_t page = S.page;
  char *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return false;
  bool works = false;
  int fds[2];
  if (madvise(p, page, MADV_GUARD_INSTALL) == 0 && pipe2(fds, O_CLOEXEC) == 0) {
    works = write(fds[1], p, 1) < 0 && errno == EFAULT;
    close(fds[0]);
    close(fds[1]);
  }
  munmap(p, 2 * page);
  return works;
}

static long read_max_map_count(void) {
  long n = 65530; /* Linux's default, should /proc not tell */
  FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
  if (f) {
    if (fscanf(f, "%ld", &n) != 1)
      n = 65530;
    fclose(f);
  }
  return n;
}

static int class_of(size_t size);
static void flush_tcache(void *arg);

static void init_once(void) {
  S.page = (size_t)sysconf(_SC_PAGESIZE);
  S.guard = S.page > GUARD_MIN ? S.page : GUARD_MIN;
  const char *force = getenv("WEFT_STACK_GUARD");
  if (force && strcmp(force, "page") == 0)
    S.mode = WEFT__GUARD_PAGE;
  else
    S.mode = guard_regions_work() ? WEFT__GUARD_REGION : WEFT__GUARD_PAGE;
  long budget = read_max_map_count() / 4;
  const char *b = getenv("WEFT_STACK_GUARD_BUDGET");
  if (b && *b)
    budget = strtol(b, NULL, 10);
  atomic_init(&S.budget, budget);
  for (int i = 0; i < NCLS; i++)
    pthread_mutex_init(&S.cls[i].lock, NULL);
  S.default_cls = class_of(weft__stack_default_size());
  pthread_key_create(&S.flush_key, flush_tcache);
}

static void ensure_init(void) { pthread_once(&S.once, init_once); }

/* The thread-local cache of default-size stacks. */
enum { TCACHE_MAX = 16 };
static __thread struct tcache {
  int n;
  bool registered; /* flush_key set for this thread */
  char *lo[TCACHE_MAX];
  uint8_t kind[TCACHE_MAX];
} tcache __attribute__((tls_model("initial-exec")));

static void put_shared(const weft__stack *st);

/* At thread exit: the stacks go back to the shared cache. Another key's
 * destructor, running after this one, may still put a stack here (a
 * copied generator's shared stack, src/gen/copied.c): the cache is then
 * registered again, so that pthreads runs this once more. */
static void flush_tcache(void *arg) {
  struct tcache *tc = arg;
  size_t size = (size_t)1 << S.default_cls;
  while (tc->n > 0) {
    tc->n--;
    weft__stack st = {.lo = tc->lo[tc->n],
                      .size = size,
                      .cls = (uint8_t)S.default_cls,
                      .kind = tc->kind[tc->n]};
    put_shared(&st);
  }
  tc->registered = false;
}

size_t weft__stack_default_size(void) {
  return DEFAULT_SIZE * WEFT__TOOLS_STACK_SCALE;
}

int weft__stack_guard_mode(void) {
  ensure_init();
  return S.mode;
}

static int class_of(size_t size) {
  int c = CLS_MIN;
  while (((size_t)1 << c) < size)
    c++;
  return c;
}

static size_t warm_max(int c) {
  size_t n = ((size_t)16 << 20) >> c; /* about 16 MiB of stacks */
  return n < 64 ? 64 : n;
}

/* Maps a new slab for class c. Called with the class lock held. */
static int new_slab(struct size_class *k, int c) {
  size_t stride = S.guard + ((size_t)1 << c);
  size_t count = SLAB_BYTES / stride;
  if (count > SLAB_MAX_COUNT)
    count = SLAB_MAX_COUNT;
  if (count < 1)
    count = 1;
  void *p = mmap(NULL, stride * count, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return -ENOMEM;
  k->fresh = p;
  k->fresh_left = count;
  return 0;
}

/* Gives a never-used stack its guard. Returns the guard kind it got. */
static int install_guard(char *lo, size_t size) {
  char *guard = lo - S.guard;
  int kind = WEFT__GUARD_CANARY;
  if (S.mode == WEFT__GUARD_REGION &&
      madvise(guard, S.guard, MADV_GUARD_INSTALL) == 0) {
    kind = WEFT__GUARD_REGION;
  } else if (atomic_fetch_sub(&S.budget, 1) > 0) {
    if (mprotect(guard, S.guard, PROT_NONE) == 0)
      kind = WEFT__GUARD_PAGE;
  }
  weft__valgrind_stack_register(lo, lo + size);
  return kind;
}

int weft__stack_get(weft__stack *st, size_t size) {
  if (size == 0)
    size = weft__stack_default_size();
  if (size > WEFT__STACK_MAX)
    return -EINVAL;
  ensure_init();
  int c = class_of(size);
  size_t usable = (size_t)1 << c;
  struct size_class *k = &S.cls[c - CLS_MIN];

  if (c == S.default_cls && tcache.n > 0) {
    tcache.n--;
    *st = (weft__stack){.lo = tcache.lo[tcache.n],
                        .size = usable,
                        .cls = (uint8_t)c,
                        .kind = tcache.kind[tcache.n]};
    goto arm;
  }
  pthread_mutex_lock(&k->lock);
  if (k->warm) {
    struct warm_node *n = k->warm;
    k->warm = n->next;
    k->nwarm--;
    pthread_mutex_unlock(&k->lock);
    char *lo = (char *)(n + 1) - usable;
    *st = (weft__stack){
        .lo = lo, .size = usable, .cls = (uint8_t)c, .kind = n->kind};
  } else if (k->ntrim || k->ncold) {
    bool cold = k->ntrim == 0;
    uintptr_t e = cold ? k->cold[--k->ncold] : k->trim[--k->ntrim];
    pthread_mutex_unlock(&k->lock);
    *st = (weft__stack){.lo = (char *)(e & ~(uintptr_t)0xff),
                        .size = usable,
                        .cls = (uint8_t)c,
                        .kind = (uint8_t)(e & 0xff),
                        .cold = cold};
  } else {
    if (!k->fresh_left) {
      int rc = new_slab(k, c);
      if (rc < 0) {
        pthread_mutex_unlock(&k->lock);
        return rc;
      }
    }
    char *lo = k->fresh + S.guard;
    k->fresh += S.guard + usable;
    k->fresh_left--;
    pthread_mutex_unlock(&k->lock);
    *st = (weft__stack){.lo = lo,
                        .size = usable,
                        .cls = (uint8_t)c,
                        .kind = (uint8_t)install_guard(lo, usable),
                        .cold = true};
  }
arm:
  /* Armed on every hand-out: a cold or fresh stack reads as zeros, and a
   * warm one may have been trimmed, or touched by its last owner's final
   * switch after its last check. */
  if (st->kind == WEFT__GUARD_CANARY) {
    *(uint64_t *)(void *)st->lo = weft__stack_canary;
    st->cold = false;
  }
  return 0;
}

static void push_warm(struct size_class *k, const weft__stack *st) {
  struct warm_node *n = (struct warm_node *)(void *)(st->lo + st->size) - 1;
  n->next = k->warm;
  n->kind = st->kind;
  k->warm = n;
  k->nwarm++;
}

/* Appends n entries to k's cold list; k locked. False when no memory. */
static bool list_cold(struct size_class *k, const uintptr_t *e, size_t n) {
  if (k->ncold + n > k->cold_cap) {
    size_t cap = k->cold_cap ? 2 * k->cold_cap : 256;
    while (cap < k->ncold + n)
      cap *= 2;
    uintptr_t *a = realloc(k->cold, cap * sizeof *a);
    if (!a)
      return false;
    k->cold = a;
    k->cold_cap = cap;
  }
  memcpy(k->cold + k->ncold, e, n * sizeof *e);
  k->ncold += n;
  return true;
}

static bool list_cold_one(const weft__stack *st) {
  struct size_class *k = &S.cls[st->cls - CLS_MIN];
  uintptr_t e = (uintptr_t)st->lo | st->kind;
  pthread_mutex_lock(&k->lock);
  bool listed = list_cold(k, &e, 1);
  pthread_mutex_unlock(&k->lock);
  return listed;
}

void weft__stack_put_unused(const weft__stack *st) {
  if (!st->cold || !list_cold_one(st))
    weft__stack_put(st);
}

void weft__stack_put(const weft__stack *st) {
  if (st->cls == S.default_cls && tcache.n < TCACHE_MAX) {
    if (!tcache.registered) {
      /* A non-NULL value, so that the destructor runs at thread exit. */
      if (pthread_setspecific(S.flush_key, &tcache) != 0) {
        put_shared(st);
        return;
      }
      tcache.registered = true;
    }
    tcache.lo[tcache.n] = st->lo;
    tcache.kind[tcache.n] = st->kind;
    tcache.n++;
    return;
  }
  put_shared(st);
}

static int by_address(const void *a, const void *b) {
  uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
  return (x > y) - (x < y);
}

/* Gives the pages of n stacks of size bytes (lo | kind each) back to the
 * kernel, one madvise per run of neighbours in a slab. Guard regions
 * between them survive MADV_DONTNEED, and the other guard kinds are
 * untouched by it. Sorts e. */
static void trim_batch(uintptr_t *e, size_t n, size_t size) {
  qsort(e, n, sizeof *e, by_address);
  const uintptr_t mask = ~(uintptr_t)0xff;
  for (size_t i = 0; i < n;) {
    char *start = (char *)(e[i] & mask), *end = start + size;
    for (i++; i < n && (char *)(e[i] & mask) == end + S.guard; i++)
      end += S.guard + size;
    madvise(start, (size_t)(end - start), MADV_DONTNEED);
  }
}

static void put_shared(const weft__stack *st) {
  struct size_class *k = &S.cls[st->cls - CLS_MIN];
  pthread_mutex_lock(&k->lock);
  if (k->nwarm < warm_max(st->cls)) {
    push_warm(k, st);
    pthread_mutex_unlock(&k->lock);
    return;
  }
  k->trim[k->ntrim++] = (uintptr_t)st->lo | st->kind;
  if (k->ntrim < TRIM_BATCH) {
    pthread_mutex_unlock(&k->lock);
    return;
  }
  uintptr_t batch[TRIM_BATCH];
  memcpy(batch, k->trim, sizeof batch);
  k->ntrim = 0;
  pthread_mutex_unlock(&k->lock);

  /* Trimmed before they are listed: once on the cold list another thread
   * may take one, and the zap must not hit a stack in use. */
  trim_batch(batch, TRIM_BATCH, st->size);

  pthread_mutex_lock(&k->lock);
  if (!list_cold(k, batch, TRIM_BATCH)) {
    /* No memory to list them: keep them warm past the limit, not lost. */
    for (size_t i = 0; i < TRIM_BATCH; i++)
      push_warm(k, &(weft__stack){.lo = (char *)(batch[i] & ~(uintptr_t)0xff),
                                  .size = st->size,
                                  .kind = (uint8_t)(batch[i] & 0xff)});
  }
  pthread_mutex_unlock(&k->lock);
}

size_t weft__stack_trim_below(const weft__stack *st, const void *sp) {
  /* The red zone below the stack pointer (x86-64's 128 bytes) may hold a
   * leaf function's data; a canary-guarded stack keeps its lowest page,
   * which holds the canary. */
  uintptr_t lo =
      (uintptr_t)st->lo + (st->kind == WEFT__GUARD_CANARY ? S.page : 0);
  uintptr_t end =
      ((uintptr_t)sp - WEFT__STACK_RED_ZONE) & ~(uintptr_t)(S.page - 1);
  if ((uintptr_t)sp < (uintptr_t)st->lo + WEFT__STACK_RED_ZONE ||
      (uintptr_t)sp > (uintptr_t)st->lo + st->size || end <= lo)
    return 0;
  if (madvise((void *)lo, end - lo, MADV_DONTNEED) != 0)
    return 0;
  return end - lo;
}

void weft__stack_give_back(const weft__stack *st) {
  char *lo = st->lo + (st->kind == WEFT__GUARD_CANARY ? S.page : 0);
  madvise(lo, (size_t)(st->lo + st->size - lo), MADV_DONTNEED);
}

/* Linux 5.14's; older kernels refuse it (EINVAL), and the copy that
 * follows faults its pages in instead. */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

void weft__stack_commit_from(const weft__stack *st, const void *from) {
  uintptr_t lo = (uintptr_t)from & ~(uintptr_t)(S.page - 1);
  char *top = st->lo + st->size;
  if (lo >= (uintptr_t)st->lo && lo < (uintptr_t)top)
    madvise((void *)lo, (size_t)((uintptr_t)top - lo), MADV_POPULATE_WRITE);
}

bool weft__stack_overflowed_at(const weft__stack *st, const void *addr) {
  const char *a = addr;
  if (st->kind == WEFT__GUARD_CANARY)
    return a >= st->lo - S.guard && a < st->lo + S.page;
  return a >= st->lo - S.guard && a < st->lo;
}
