/*
 * Stress: threads race to resume and throw into a small pool of shared
 * generators for WEFT_STRESS_SECONDS (default 1). Checks that a generator
 * never runs on two threads at once, that every successful resume or throw
 * ran it exactly once (no lost and no doubled run), and that losers got
 * -EBUSY and changed nothing.
 *
 * Then closes race resumes: in each round every thread tries to close or
 * resume the same fresh generator; exactly one close may succeed, the
 * generator must see exactly one -ECANCELED, and every call after the close
 * must find it finished.
 *
 * Last, frees race a running generator: one thread resumes a generator,
 * which runs a random while, and the main thread, once the generator runs,
 * tries to free it, retrying on -EBUSY, while the resume returns. The free
 * must close the generator exactly once, and the resume must not touch the
 * generator after it let go of it (ASan and TSan runs would report it). No
 * call is made through the handle once a free has returned 0: a freed
 * handle must not be used (weft/gen.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <weft.h>

#include "../../src/gen/gen-private.h" /* the bias, to see it taken */

/* With WEFT_STRESS_GEN_COPIED=1 (ctest's stress-gen-copied), every
 * generator is a copied-stack one (weft_gen_opts.copied): the races then
 * also take and let go of the stacks they share, and copy frames across
 * threads. */
static int gen_new(weft_gen **g, weft_gen_fn fn, void *arg,
                   const weft_gen_opts *o) {
  const char *e = getenv("WEFT_STRESS_GEN_COPIED");
  weft_gen_opts c = o ? *o : (weft_gen_opts){0};
  c.copied = e && *e == '1';
  return weft_gen_new(g, fn, arg, &c);
}

#define IV(x) ((void *)(intptr_t)(x))
#define VI(p) ((intptr_t)(p))

enum { GENS = 6, THREADS = 4 };

struct slot {
  weft_gen *g;
  atomic_int inside;     /* threads inside the generator right now */
  atomic_long runs;      /* times the generator was entered */
  atomic_long successes; /* resumes and throws that returned >= 0 */
  atomic_long busy;      /* that returned -EBUSY */
  atomic_long throws_seen;
  atomic_long throws_made;
  atomic_int overlap;
};

static struct slot slots[GENS];
static atomic_bool stop;

static void *body(void *arg) {
  struct slot *s = arg;
  for (;;) {
    if (atomic_fetch_add(&s->inside, 1) != 0)
      atomic_store(&s->overlap, 1);
    atomic_fetch_add(&s->runs, 1);
    for (volatile int spin = 0; spin < 50; spin++)
      ;
    atomic_fetch_sub(&s->inside, 1);
    int rc = weft_gen_yield(NULL, NULL);
    if (rc == -EIO)
      atomic_fetch_add(&s->throws_seen, 1);
    else if (rc != 0)
      return NULL;
  }
}

static void *worker(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    struct slot *s = &slots[rand_r(&seed) % GENS];
    bool throw = rand_r(&seed) % 4 == 0;
    int rc =
        throw ? weft_gen_throw(s->g, -EIO, NULL) : weft_gen_next(s->g, NULL);
    if (rc == WEFT_GEN_YIELDED) {
      atomic_fetch_add(&s->successes, 1);
      if (throw)
        atomic_fetch_add(&s->throws_made, 1);
    } else if (rc == -EBUSY) {
      atomic_fetch_add(&s->busy, 1);
    } else {
      fprintf(stderr, "unexpected result %d (%s)\n", rc, weft_strerror(rc));
      exit(1);
    }
  }
  return NULL;
}

/* --- closes racing resumes ------------------------------------------------ */

static atomic_int cancels_seen;

static void *until_closed(void *arg) {
  (void)arg;
  for (;;) {
    int rc = weft_gen_yield(NULL, NULL);
    if (rc == -ECANCELED) {
      atomic_fetch_add(&cancels_seen, 1);
      return NULL;
    }
  }
}

static weft_gen *contested;
static pthread_barrier_t round_start, round_end;
static atomic_int after_close_errors;

static void *closer(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  for (;;) {
    /* Every closer reaches the barrier each round; stop is read past it. */
    pthread_barrier_wait(&round_start);
    if (atomic_load(&stop))
      break;
    for (int i = 0; i < 20; i++) {
      if (rand_r(&seed) % 3 == 0) {
        int rc = weft_gen_close(contested);
        if (rc == 0 && weft_gen_state(contested) != WEFT_GEN_FINISHED)
          atomic_fetch_add(&after_close_errors, 1);
      } else {
        int rc = weft_gen_next(contested, NULL);
        if (rc != WEFT_GEN_YIELDED && rc != -EBUSY && rc != -ENODATA)
          atomic_fetch_add(&after_close_errors, 1);
      }
    }
    pthread_barrier_wait(&round_end);
  }
  return NULL;
}

static int close_races(double seconds) {
  pthread_barrier_init(&round_start, NULL, THREADS + 1);
  pthread_barrier_init(&round_end, NULL, THREADS + 1);
  atomic_store(&stop, false);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    pthread_create(&t[i], NULL, closer, (void *)(uintptr_t)(i * 31 + 7));
  long rounds = 0;
  int failed = 0;
  double end = (double)time(NULL) + seconds;
  while ((double)time(NULL) < end) {
    atomic_store(&cancels_seen, 0);
    if (gen_new(&contested, until_closed, NULL, NULL) != 0 ||
        weft_gen_next(contested, NULL) != WEFT_GEN_YIELDED)
      return 1;
    pthread_barrier_wait(&round_start);
    pthread_barrier_wait(&round_end);
    /* Every thread has made its calls; close for sure, then check. */
    weft_gen_close(contested);
    if (atomic_load(&cancels_seen) != 1) {
      fprintf(stderr, "round %ld: the generator saw %d cancels\n", rounds,
              atomic_load(&cancels_seen));
      failed++;
    }
    if (weft_gen_next(contested, NULL) != -ENODATA)
      failed++;
    weft_gen_free(contested);
    rounds++;
  }
  atomic_store(&stop, true);
  pthread_barrier_wait(&round_start);
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  if (atomic_load(&after_close_errors)) {
    fprintf(stderr, "%d unexpected results around closes\n",
            atomic_load(&after_close_errors));
    failed++;
  }
  printf("stress-gen: %ld close rounds: %s\n", rounds,
         failed ? "FAILED" : "ok");
  return failed;
}

/* --- frees racing a running generator ------------------------------------ */

static atomic_bool entered;

static void *spins_then_yields(void *arg) {
  (void)arg;
  void *in;
  for (;;) {
    atomic_store(&entered, true);
    for (volatile int spin = 0; spin < (int)(random() % 4000); spin++)
      ;
    if (weft_gen_yield(NULL, &in) == -ECANCELED) {
      atomic_fetch_add(&cancels_seen, 1);
      return NULL;
    }
  }
}

static void *resume_once(void *arg) { return IV(weft_gen_next(arg, NULL)); }

static int free_races(double seconds) {
  long rounds = 0, busy = 0;
  int failed = 0;
  double end = (double)time(NULL) + seconds;
  while ((double)time(NULL) < end) {
    weft_gen *g;
    atomic_store(&cancels_seen, 0);
    if (gen_new(&g, spins_then_yields, NULL, NULL) != 0 ||
        weft_gen_next(g, NULL) != WEFT_GEN_YIELDED)
      return 1;
    atomic_store(&entered, false);
    pthread_t t;
    pthread_create(&t, NULL, resume_once, g);
    while (!atomic_load(&entered))
      ;
    int rc;
    while ((rc = weft_gen_free(g)) == -EBUSY)
      busy++;
    void *resumed;
    pthread_join(t, &resumed);
    if (rc != 0 || atomic_load(&cancels_seen) != 1 ||
        VI(resumed) != WEFT_GEN_YIELDED) {
      fprintf(stderr, "round %ld: free %d, resume %d, %d cancels seen\n",
              rounds, rc, (int)VI(resumed), atomic_load(&cancels_seen));
      failed++;
    }
    rounds++;
  }
  printf("stress-gen: %ld free rounds, %ld refused busy: %s\n", rounds, busy,
         failed ? "FAILED" : "ok");
  return failed;
}

/* --- a biased generator's owner racing other threads --------------------- */

/* A generator resumed by one thread again and again is biased to it, and
 * claimed with a plain store (src/gen/bias.h); a resume, throw or free from
 * another thread revokes the bias first. Each round: a fresh generator,
 * resumed by the main thread until biased to it (the private header says
 * when), then that owner resumes it in a loop while a racer thread resumes
 * or throws into it, each racer's call revoking the bias it finds (up to
 * the generator's last rebias). Checks as the first part: never two threads
 * inside, each success one run, losers -EBUSY; and that the bias was there to
 * race. */

static struct slot biased;
static weft_gen *_Atomic raced;
static pthread_barrier_t bias_start, bias_end;
static atomic_long racer_wins, racer_busy, owner_busy;

static void *racer(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  for (;;) {
    pthread_barrier_wait(&bias_start);
    weft_gen *g = atomic_load(&raced);
    if (!g)
      break;
    for (int i = 0; i < 8; i++) {
      for (volatile int spin = 0; spin < (int)(rand_r(&seed) % 2000); spin++)
        ;
      bool throw = rand_r(&seed) % 3 == 0;
      int rc = throw ? weft_gen_throw(g, -EIO, NULL) : weft_gen_next(g, NULL);
      if (rc == WEFT_GEN_YIELDED) {
        atomic_fetch_add(&biased.successes, 1);
        atomic_fetch_add(&racer_wins, 1);
        if (throw)
          atomic_fetch_add(&biased.throws_made, 1);
      } else if (rc == -EBUSY) {
        atomic_fetch_add(&racer_busy, 1);
      } else {
        fprintf(stderr, "racer: unexpected result %d\n", rc);
        exit(1);
      }
    }
    pthread_barrier_wait(&bias_end);
  }
  return NULL;
}

static int bias_races(double seconds) {
  pthread_barrier_init(&bias_start, NULL, 2);
  pthread_barrier_init(&bias_end, NULL, 2);
  pthread_t t;
  pthread_create(&t, NULL, racer, (void *)(uintptr_t)4242);
  long rounds = 0, unbiased = 0;
  int failed = 0;
  double end = (double)time(NULL) + seconds;
  while ((double)time(NULL) < end && !failed) {
    biased = (struct slot){0};
    weft_gen *g;
    if (gen_new(&g, body, &biased, NULL) != 0)
      return 1;
    for (int i = 0; i < 3; i++)
      if (weft_gen_next(g, NULL) != WEFT_GEN_YIELDED)
        return 1;
    atomic_fetch_add(&biased.successes, 2); /* and the start, one run */
    if (weft__bias_owner(&g->bias) != weft__bias_me())
      unbiased++;
    atomic_store(&raced, g);
    pthread_barrier_wait(&bias_start);
    for (int i = 0; i < 400; i++) {
      int rc = weft_gen_next(g, NULL);
      if (rc == WEFT_GEN_YIELDED)
        atomic_fetch_add(&biased.successes, 1);
      else if (rc == -EBUSY)
        atomic_fetch_add(&owner_busy, 1);
      else
        failed++;
    }
    pthread_barrier_wait(&bias_end);
    long runs = atomic_load(&biased.runs), ok = atomic_load(&biased.successes);
    if (atomic_load(&biased.overlap) || runs != ok + 1 ||
        atomic_load(&biased.throws_seen) != atomic_load(&biased.throws_made)) {
      fprintf(stderr,
              "bias round %ld: overlap %d, %ld runs for %ld successes, %ld "
              "throws seen of %ld\n",
              rounds, atomic_load(&biased.overlap), runs, ok,
              atomic_load(&biased.throws_seen),
              atomic_load(&biased.throws_made));
      failed++;
    }
    if (weft_gen_free(g) != 0)
      failed++;
    rounds++;
  }
  atomic_store(&raced, NULL);
  pthread_barrier_wait(&bias_start);
  pthread_join(t, NULL);
  /* Without membarrier (Valgrind, old kernels) nothing is ever biased. */
  printf("stress-gen: %ld bias rounds (%ld not biased), racer won %ld, lost "
         "%ld; owner lost %ld: %s\n",
         rounds, unbiased, atomic_load(&racer_wins), atomic_load(&racer_busy),
         atomic_load(&owner_busy), failed ? "FAILED" : "ok");
  return failed;
}

int main(void) {
  const char *env = getenv("WEFT_STRESS_SECONDS");
  double seconds = env && *env ? strtod(env, NULL) : 1.0;
  for (int i = 0; i < GENS; i++) {
    if (gen_new(&slots[i].g, body, &slots[i], NULL) != 0)
      return 1;
    /* Start each one, so that every later resume lands on its yield. */
    if (weft_gen_next(slots[i].g, NULL) != WEFT_GEN_YIELDED)
      return 1;
  }
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i * 7919 + 1));
  struct timespec d = {(time_t)seconds,
                       (long)((seconds - (double)(time_t)seconds) * 1e9)};
  nanosleep(&d, NULL);
  atomic_store(&stop, true);
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);

  int failed = 0;
  long total = 0, busy = 0;
  for (int i = 0; i < GENS; i++) {
    struct slot *s = &slots[i];
    long runs = atomic_load(&s->runs), ok = atomic_load(&s->successes);
    if (atomic_load(&s->overlap)) {
      fprintf(stderr, "generator %d ran on two threads at once\n", i);
      failed++;
    }
    if (runs != ok + 1) {
      fprintf(stderr, "generator %d: %ld runs for %ld resumes\n", i, runs, ok);
      failed++;
    }
    if (atomic_load(&s->throws_seen) != atomic_load(&s->throws_made)) {
      fprintf(stderr, "generator %d: %ld throws seen, %ld made\n", i,
              atomic_load(&s->throws_seen), atomic_load(&s->throws_made));
      failed++;
    }
    if (weft_gen_free(s->g) != 0) {
      fprintf(stderr, "generator %d did not close\n", i);
      failed++;
    }
    total += ok;
    busy += atomic_load(&s->busy);
  }
  printf("stress-gen: %ld resumes, %ld refused busy, %.1f s: %s\n", total, busy,
         seconds, failed ? "FAILED" : "ok");
  int phases_failed = (failed != 0) + (close_races(seconds) != 0) +
                      (free_races(seconds) != 0) + (bias_races(seconds) != 0);
  printf("%d passed, %d failed\n", 4 - phases_failed, phases_failed);
  return phases_failed ? 1 : 0;
}
