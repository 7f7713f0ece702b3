/*
 * Stress: cooperative I/O racing timeouts, cancellations and wake-ups, for
 * WEFT_STRESS_SECONDS (default 1), on two hubs (threads) at once.
 *
 * Each hub has PAIRS socket pairs and a stream of numbered bytes each way
 * on every pair, so every fd has a reader and a writer waiting on it at the
 * same time (one-shot arming must re-arm for whichever still waits).
 * Readers and writers use random sizes and random timeouts (0, short, or
 * none); a chaos task keeps cancelling a random reader or writer and
 * starting a new one in its place. Checks:
 *  - every byte arrives once and in order (no lost or doubled data);
 *  - a call that times out took at least its timeout;
 *  - a cancelled task's call returns -ECANCELED, and nothing else does;
 *  - at the end, with the tasks stopped, everything sent can be drained:
 *    a lost wake-up would show as data never delivered, a lost task as a
 *    hang (ctest's timeout).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>

#include "stress.h"

enum { PAIRS = 8, STREAMS = 2 * PAIRS, HUBS = 2, BUF = 65536 };

struct stream {
  int rfd, wfd;
  uint64_t sent, received;
  weft_task *reader, *writer;
};

struct hub {
  struct stream s[STREAMS];
  double seconds;
  unsigned seed;
  long timeouts, cancels, moved;
  int failed;
};

static atomic_int failures;

#define FAIL(h, ...)                                                           \
  do {                                                                         \
    fprintf(stderr, "stress-io: " __VA_ARGS__);                                \
    fputc('\n', stderr);                                                       \
    (h)->failed = 1;                                                           \
    atomic_fetch_add(&failures, 1);                                            \
  } while (0)

/* A timeout: none, a poll, or up to 2 ms. */
static int64_t pick_timeout(unsigned *seed) {
  unsigned r = stress_next(seed) % 8;
  if (r == 0)
    return WEFT_FOREVER;
  if (r == 1)
    return 0;
  return WEFT_US(1 + stress_next(seed) % 2000);
}

struct role {
  struct hub *h;
  struct stream *s;
  unsigned seed;
};

/* The result of a call that did not move data: fine, or a failure. */
static void check_idle(struct hub *h, ssize_t rc, int64_t timeout, int64_t took,
                       const char *what) {
  if (rc == -ETIMEDOUT) {
    h->timeouts++;
    if (timeout > 0 && took < timeout)
      FAIL(h, "%s timed out after %lld ns, before its %lld ns", what,
           (long long)took, (long long)timeout);
  } else if (rc != -ECANCELED) {
    FAIL(h, "%s returned %zd (%s)", what, rc, weft_strerror((int)rc));
  }
}

static void *reader(void *arg) {
  struct role r = *(struct role *)arg;
  free(arg);
  unsigned char *buf = malloc(BUF);
  for (;;) {
    size_t want = 1 + stress_next(&r.seed) % BUF;
    int64_t timeout = pick_timeout(&r.seed);
    int64_t t0 = weft_now();
    ssize_t n = weft_io_recv(r.s->rfd, buf, want, 0, timeout);
    if (n > 0) {
      for (ssize_t i = 0; i < n; i++)
        if (buf[i] != (unsigned char)((r.s->received + (uint64_t)i) % 251)) {
          FAIL(r.h, "byte %llu of a stream is wrong",
               (unsigned long long)(r.s->received + (uint64_t)i));
          break;
        }
      r.s->received += (uint64_t)n;
      continue;
    }
    if (n == 0)
      FAIL(r.h, "a stream ended early");
    check_idle(r.h, n, timeout, weft_now() - t0, "recv");
    if (n == -ECANCELED || r.h->failed)
      break;
  }
  free(buf);
  return NULL;
}

static void *writer(void *arg) {
  struct role r = *(struct role *)arg;
  free(arg);
  unsigned char *buf = malloc(BUF);
  for (;;) {
    size_t len = 1 + stress_next(&r.seed) % BUF;
    for (size_t i = 0; i < len; i++)
      buf[i] = (unsigned char)((r.s->sent + i) % 251);
    int64_t timeout = pick_timeout(&r.seed);
    int64_t t0 = weft_now();
    ssize_t n = stress_next(&r.seed) % 2
                    ? weft_io_send(r.s->wfd, buf, len, 0, timeout)
                    : weft_io_write(r.s->wfd, buf, len, timeout);
    if (n > 0) {
      r.s->sent += (uint64_t)n;
      if (stress_next(&r.seed) % 4 == 0)
        weft_yield();
      continue;
    }
    check_idle(r.h, n, timeout, weft_now() - t0, "send");
    if (n == -ECANCELED || r.h->failed)
      break;
  }
  free(buf);
  return NULL;
}

static int start(struct hub *h, struct stream *s, bool read) {
  struct role *r = malloc(sizeof *r);
  *r = (struct role){h, s, stress_next(&h->seed)};
  return weft_task_spawn(read ? &s->reader : &s->writer, read ? reader : writer,
                         r, NULL);
}

/* Cancels a random reader or writer and starts another in its place. */
static void *chaos(void *arg) {
  struct hub *h = arg;
  while (weft_sleep(WEFT_US(stress_next(&h->seed) % 500)) == 0 && !h->failed) {
    struct stream *s = &h->s[stress_next(&h->seed) % STREAMS];
    bool read = stress_next(&h->seed) % 2;
    weft_task **t = read ? &s->reader : &s->writer;
    if (weft_task_cancel(*t) != 0)
      FAIL(h, "cancel failed");
    int rc = weft_task_join(*t, WEFT_FOREVER, NULL);
    if (rc == -ECANCELED)
      break; /* the chaos itself is being stopped; the hub joins *t */
    if (rc != 0) {
      FAIL(h, "join of a cancelled task: %s", weft_strerror(rc));
      break;
    }
    h->cancels++;
    if (start(h, s, read) != 0)
      FAIL(h, "spawn failed");
  }
  return NULL;
}

static void *hub_main(void *arg) {
  struct hub *h = arg;
  for (int p = 0; p < PAIRS; p++) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
      FAIL(h, "socketpair: %s", strerror(errno));
      return NULL;
    }
    h->s[2 * p] = (struct stream){.rfd = sv[1], .wfd = sv[0]};
    h->s[2 * p + 1] = (struct stream){.rfd = sv[0], .wfd = sv[1]};
  }
  for (int i = 0; i < STREAMS; i++)
    if (start(h, &h->s[i], true) != 0 || start(h, &h->s[i], false) != 0)
      FAIL(h, "spawn failed");
  weft_task *c;
  weft_task_spawn(&c, chaos, h, NULL);
  weft_sleep((int64_t)(h->seconds * 1e9));
  /* Stop: the chaos first, then every reader and writer. */
  weft_task_cancel(c);
  weft_task_join(c, WEFT_FOREVER, NULL);
  for (int i = 0; i < STREAMS; i++) {
    weft_task_cancel(h->s[i].reader);
    weft_task_cancel(h->s[i].writer);
    weft_task_join(h->s[i].reader, WEFT_FOREVER, NULL);
    weft_task_join(h->s[i].writer, WEFT_FOREVER, NULL);
  }
  /* Everything sent is still there to read, in order. */
  unsigned char *buf = malloc(BUF);
  for (int i = 0; i < STREAMS; i++) {
    struct stream *s = &h->s[i];
    while (s->received < s->sent && !h->failed) {
      ssize_t n = weft_io_recv(s->rfd, buf, BUF, 0, WEFT_SEC(10));
      if (n <= 0) {
        FAIL(h, "%llu bytes sent were never delivered: %s",
             (unsigned long long)(s->sent - s->received),
             weft_strerror((int)n));
        break;
      }
      for (ssize_t k = 0; k < n; k++)
        if (buf[k] != (unsigned char)((s->received + (uint64_t)k) % 251)) {
          FAIL(h, "a drained byte is wrong");
          break;
        }
      s->received += (uint64_t)n;
    }
    if (weft_io_recv(s->rfd, buf, 1, 0, 0) != -ETIMEDOUT)
      FAIL(h, "more was delivered than sent");
  }
  for (int i = 0; i < STREAMS; i++) {
    h->moved += (long)h->s[i].sent;
    if (i % 2 == 0) {
      weft_io_close(h->s[i].rfd);
      weft_io_close(h->s[i].wfd);
    }
  }
  free(buf);
  return NULL;
}

static void *thread_main(void *arg) {
  struct hub *h = arg;
  int rc = weft_run(hub_main, h, NULL);
  if (rc != 0)
    FAIL(h, "weft_run returned %d (%s)", rc, weft_strerror(rc));
  return NULL;
}

int main(void) {
  const char *env = getenv("WEFT_STRESS_SECONDS");
  double seconds = env && *env ? strtod(env, NULL) : 1.0;
  static struct hub hubs[HUBS];
  pthread_t t[HUBS];
  for (int i = 0; i < HUBS; i++) {
    hubs[i] =
        (struct hub){.seconds = seconds, .seed = 7919u * (unsigned)(i + 1)};
    pthread_create(&t[i], NULL, thread_main, &hubs[i]);
  }
  long timeouts = 0, cancels = 0, moved = 0;
  for (int i = 0; i < HUBS; i++) {
    pthread_join(t[i], NULL);
    timeouts += hubs[i].timeouts;
    cancels += hubs[i].cancels;
    moved += hubs[i].moved;
  }
  int failed = atomic_load(&failures);
  printf("stress-io: %.1f s on %d hubs: %ld MiB moved, %ld timeouts, %ld "
         "cancellations: %s\n",
         seconds, HUBS, moved >> 20, timeouts, cancels,
         failed ? "FAILED" : "ok");
  return failed ? 1 : 0;
}
