/*
 * Stress: the hooks (weft/hook.h) racing timeouts, cancellations, closes
 * and wake-ups, for WEFT_STRESS_SECONDS (default 1), on two hubs (threads)
 * at once. stress-io does the same with weft's own weft_io_* calls; here
 * every call is a plain libc one (read, readv, write, writev, recv, send,
 * poll, usleep, nanosleep, setsockopt, fcntl, close, dup2), made in weft
 * tasks, so that it goes through libweft-hook.
 *
 * Each hub has PAIRS AF_UNIX stream socket pairs, left blocking (never
 * O_NONBLOCK), and a stream of numbered bytes each way on every pair. Each
 * stream has a writer task and one or two reader tasks (two readers of one
 * fd: the second waits through an epoll fd of its own). Calls and sizes
 * are random; some reads are preceded by a poll() with a random timeout;
 * some fds have a small SO_RCVTIMEO or SO_SNDTIMEO; tasks sometimes
 * usleep(). A chaos task keeps cancelling a random reader or writer
 * (weft_task_cancel) and starting a new one in its place. A closer task
 * keeps making a spare socket pair, parking a victim task in a read(),
 * recv(), readv(), poll() or write() on one end, and then closing that end
 * (or dup2-ing over it, or closing the other end, or cancelling it and
 * closing the fd) under it.
 *
 * Checks:
 *  - every byte arrives once and in order, two readers of one fd included;
 *  - a blocking write moves all its bytes, unless its task was cancelled
 *    or its SO_SNDTIMEO passed: then a short count, which the stream's
 *    position takes in (the drain below proves it);
 *  - a hooked call fails with ECANCELED only in a cancelled task, with
 *    EAGAIN only on an fd with SO_RCVTIMEO/SO_SNDTIMEO and not before that
 *    timeout, and with nothing else; a read never returns 0 (no stream
 *    ends); usleep and nanosleep take at least their time unless cancelled;
 *  - poll() that returns 0 took at least its timeout, and then nothing is
 *    there to read (the peer is written by this hub's tasks only); after
 *    poll() said POLLIN, the read gets bytes without waiting;
 *  - fcntl(F_GETFL) never shows O_NONBLOCK on these fds, through the hooks
 *    nor past them (the hooks must not change the program's flags);
 *  - a task blocked on an fd that another task of its hub closes or dup2s
 *    over ends with -1/EBADF (a write: EBADF or the count it moved; a read
 *    whose data came before the close: that data; a closed peer: EOF;
 *    cancelled as well: ECANCELED will do), and within seconds, not never;
 *  - a second task parked in a read of the same fd (which waits through an
 *    epoll fd of its own) is woken by the close too;
 *  - at the end, with the tasks stopped, everything sent can be drained:
 *    a lost wake-up shows as data never delivered, a lost task as a hang
 *    (ctest's timeout). ASan and TSan runs check the rest.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <weft/hook.h>
#include <weft/hub.h>
#include <weft/io.h>

#include "stress.h"

enum { PAIRS = 6, STREAMS = 2 * PAIRS, HUBS = 2, BUF = 65536 };

struct hub;
struct stream;

/* A reader or writer task of a stream. Its hub's tasks share one thread,
 * so plain fields do: `cancelled` is set before the task is cancelled. */
struct role {
  struct hub *h;
  struct stream *s;
  unsigned seed;
  bool cancelled;
  weft_task *task;
};

struct stream {
  int rfd, wfd;
  int64_t rcvtimeo, sndtimeo; /* ns set on rfd and wfd; 0: none */
  int readers;                /* 1 or 2 */
  uint64_t sent, received;
  struct role *reader[2], *writer;
};

struct stats {
  long reads, writes, eagain_reads, eagain_writes, short_writes;
  long poll_timeouts, cancels, cancelled_short_writes, sleeps;
  long closes, close_ebadf, close_ecanceled, close_data, close_eof;
  long close_write_short;
};

struct hub {
  struct stream s[STREAMS];
  double seconds;
  unsigned seed;
  struct stats st;
  long moved;
  bool stopping; /* the chaos and the closer are being cancelled */
  int failed;
};

static atomic_int failures;

#define FAIL(h, ...)                                                           \
  do {                                                                         \
    fprintf(stderr, "stress-hook: " __VA_ARGS__);                              \
    fputc('\n', stderr);                                                       \
    (h)->failed = 1;                                                           \
    atomic_fetch_add(&failures, 1);                                            \
  } while (0)

/* Byte pos of every stream is pos % 251; pattern + pos % 251 holds the
 * BUF bytes from pos on (filled by main before the hubs start). */
static unsigned char pattern[BUF + 251];

static const unsigned char *bytes_from(uint64_t pos) {
  return pattern + pos % 251;
}

/* The fd's O_NONBLOCK as the program sees it (the hooks' fcntl) and as the
 * kernel has it (past the hooks): neither may ever be set here. */
static void check_blocking(struct hub *h, int fd, const char *who) {
  int seen = fcntl(fd, F_GETFL);
  int real = (int)syscall(SYS_fcntl, fd, F_GETFL);
  if (seen < 0 || real < 0)
    FAIL(h, "%s: fcntl(%d, F_GETFL) failed: %s", who, fd, strerror(errno));
  else if ((seen | real) & O_NONBLOCK)
    FAIL(h, "%s: fd %d shows O_NONBLOCK (fcntl %#x, kernel %#x)", who, fd, seen,
         real);
}

/* The bytes buf[0..n) must be the stream's from s->received on. */
static void take(struct hub *h, struct stream *s, const unsigned char *buf,
                 ssize_t n, const char *what) {
  const unsigned char *want = bytes_from(s->received);
  if (memcmp(buf, want, (size_t)n) != 0) {
    ssize_t i = 0;
    while (buf[i] == want[i])
      i++;
    FAIL(h, "%s: byte %llu of a stream is wrong", what,
         (unsigned long long)(s->received + (uint64_t)i));
  }
  s->received += (uint64_t)n;
}

/* A hooked usleep of us µs: 0 after at least that long, or -1 with
 * ECANCELED in a cancelled task (*cancelled is set before the cancel comes,
 * which may be during the sleep). Returns whether the caller goes on. */
static bool nap(struct hub *h, unsigned us, const bool *cancelled,
                const char *who) {
  int64_t t0 = weft_now();
  errno = 0;
  int rc = usleep(us);
  int e = errno;
  int64_t took = weft_now() - t0;
  h->st.sleeps++;
  if (rc == 0) {
    if (took < (int64_t)us * 1000)
      FAIL(h, "%s: usleep(%u) returned after %lld ns", who, us,
           (long long)took);
    return true;
  }
  if (e != ECANCELED || !*cancelled)
    FAIL(h, "%s: usleep(%u) failed with %s%s", who, us, strerror(e),
         *cancelled ? "" : " in a task not cancelled");
  return false;
}

/* A call failed with e after took ns: fine when the task was cancelled
 * (ECANCELED) or when the fd's own timeout passed (EAGAIN). Returns
 * whether the task goes on. */
static bool check_failure(struct role *r, int e, int64_t timeout, int64_t took,
                          const char *what) {
  struct hub *h = r->h;
  if (e == ECANCELED) {
    if (!r->cancelled)
      FAIL(h, "%s failed with ECANCELED in a task not cancelled", what);
    return false;
  }
  if (e == EAGAIN) {
    if (timeout == 0)
      FAIL(h, "%s failed with EAGAIN on a blocking fd with no timeout", what);
    else if (took < timeout)
      FAIL(h, "%s failed with EAGAIN after %lld ns, before its %lld ns", what,
           (long long)took, (long long)timeout);
    return !h->failed;
  }
  FAIL(h, "%s failed: %s", what, strerror(e));
  return false;
}

/* poll() for POLLIN with a random timeout. Returns 1 when readable, 0 when
 * it timed out, -1 when the task must stop. */
static int poll_first(struct role *r) {
  struct hub *h = r->h;
  struct stream *s = r->s;
  static const int choice[] = {-1, 0, 1, 1, 2, 3};
  int ms = choice[stress_next(&r->seed) % (sizeof choice / sizeof *choice)];
  struct pollfd p = {.fd = s->rfd, .events = POLLIN};
  int64_t t0 = weft_now();
  errno = 0;
  int n = poll(&p, 1, ms);
  int e = errno;
  int64_t took = weft_now() - t0;
  if (n < 0) {
    if (e != ECANCELED || !r->cancelled)
      FAIL(h, "poll(%d ms) failed: %s%s", ms, strerror(e),
           r->cancelled ? "" : " (task not cancelled)");
    return -1;
  }
  if (n == 0) {
    if (ms < 0)
      FAIL(h, "poll with no timeout returned 0");
    else if (took < (int64_t)ms * 1000000)
      FAIL(h, "poll(%d ms) returned 0 after %lld ns", ms, (long long)took);
    /* No other task ran since poll's last look, and only this hub's tasks
     * write the peer: nothing may be there now. */
    char c;
    errno = 0;
    ssize_t k = recv(s->rfd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (k != -1 || errno != EAGAIN)
      FAIL(h, "poll(%d ms) returned 0, but a byte was there (%zd, %s)", ms, k,
           strerror(errno));
    h->st.poll_timeouts++;
    return 0;
  }
  if (n != 1 || !(p.revents & POLLIN) ||
      (p.revents & (POLLERR | POLLHUP | POLLNVAL)))
    FAIL(h, "poll returned %d, revents %#x", n, (unsigned)p.revents);
  return h->failed ? -1 : 1;
}

static void *reader(void *arg) {
  struct role *r = arg;
  struct hub *h = r->h;
  struct stream *s = r->s;
  unsigned char *buf = malloc(BUF);
  while (!h->failed) {
    size_t want = stress_next(&r->seed) % 4 == 0
                      ? 1 + stress_next(&r->seed) % 256
                      : 1 + stress_next(&r->seed) % BUF;
    bool readable = false;
    if (stress_next(&r->seed) % 4 == 0) {
      int p = poll_first(r);
      if (p < 0)
        break;
      if (p == 0)
        continue;
      readable = true;
    }
    /* MSG_WAITALL waits for more after the first bytes: with a second
     * reader of the fd, those could go to the other in between, so only a
     * stream's sole reader asks for it. */
    unsigned how = stress_next(&r->seed) % (s->readers == 1 ? 4 : 3);
    const char *what = "read";
    int64_t t0 = weft_now();
    errno = 0;
    ssize_t n;
    if (how == 0) {
      n = read(s->rfd, buf, want);
    } else if (how == 1) {
      what = "recv";
      n = recv(s->rfd, buf, want, 0);
    } else if (how == 2) {
      what = "readv";
      size_t half = want / 2;
      struct iovec v[2] = {{buf, half}, {buf + half, want - half}};
      n = readv(s->rfd, v, 2);
    } else {
      what = "recv(MSG_WAITALL)";
      n = recv(s->rfd, buf, want, MSG_WAITALL);
    }
    int e = errno;
    int64_t took = weft_now() - t0;
    h->st.reads++;
    check_blocking(h, s->rfd, what);
    if (n > 0) {
      take(h, s, buf, n, what);
      /* A MSG_WAITALL that ends short: cancelled, or its timeout passed. */
      if (how == 3 && (size_t)n < want && !r->cancelled &&
          (s->rcvtimeo == 0 || took < s->rcvtimeo))
        FAIL(h, "recv(MSG_WAITALL) of %zu bytes returned %zd after %lld ns",
             want, n, (long long)took);
    } else if (n == 0) {
      FAIL(h, "%s returned 0: a stream ended", what);
      break;
    } else {
      if (readable)
        FAIL(h, "%s failed (%s) after poll said POLLIN", what, strerror(e));
      if (e == EAGAIN)
        h->st.eagain_reads++;
      if (!check_failure(r, e, s->rcvtimeo, took, what))
        break;
    }
    if (stress_next(&r->seed) % 64 == 0 &&
        !nap(h, stress_next(&r->seed) % 3000, &r->cancelled, "reader"))
      break;
  }
  free(buf);
  return NULL;
}

static void *writer(void *arg) {
  struct role *r = arg;
  struct hub *h = r->h;
  struct stream *s = r->s;
  unsigned char *buf = malloc(BUF);
  while (!h->failed) {
    size_t len = stress_next(&r->seed) % 4 == 0
                     ? 1 + stress_next(&r->seed) % 256
                     : 1 + stress_next(&r->seed) % BUF;
    memcpy(buf, bytes_from(s->sent), len);
    unsigned how = stress_next(&r->seed) % 3;
    const char *what = how == 0 ? "write" : how == 1 ? "send" : "writev";
    int64_t t0 = weft_now();
    errno = 0;
    ssize_t n;
    if (how == 0) {
      n = write(s->wfd, buf, len);
    } else if (how == 1) {
      n = send(s->wfd, buf, len, MSG_NOSIGNAL);
    } else {
      size_t a = len / 3, b = len / 3;
      struct iovec v[3] = {{buf, a}, {buf + a, b}, {buf + a + b, len - a - b}};
      n = writev(s->wfd, v, 3);
    }
    int e = errno;
    int64_t took = weft_now() - t0;
    h->st.writes++;
    check_blocking(h, s->wfd, what);
    if (n > 0) {
      s->sent += (uint64_t)n;
      if ((size_t)n > len) {
        FAIL(h, "%s of %zu bytes returned %zd", what, len, n);
      } else if ((size_t)n < len) {
        /* A blocking write moves everything, unless cancelled or timed
         * out: then it returns what it moved, which s->sent took in. */
        if (r->cancelled)
          h->st.cancelled_short_writes++;
        else if (s->sndtimeo == 0 || took < s->sndtimeo)
          FAIL(h, "%s of %zu bytes returned %zd after %lld ns (timeout %lld)",
               what, len, n, (long long)took, (long long)s->sndtimeo);
        else
          h->st.short_writes++;
      }
    } else if (n == 0) {
      FAIL(h, "%s of %zu bytes returned 0", what, len);
      break;
    } else {
      if (e == EAGAIN)
        h->st.eagain_writes++;
      if (!check_failure(r, e, s->sndtimeo, took, what))
        break;
    }
    if (stress_next(&r->seed) % 32 == 0 &&
        !nap(h, stress_next(&r->seed) % 4000, &r->cancelled, "writer"))
      break;
  }
  free(buf);
  return NULL;
}

static struct role *start(struct hub *h, struct stream *s, bool read) {
  struct role *r = malloc(sizeof *r);
  *r = (struct role){.h = h, .s = s, .seed = stress_next(&h->seed)};
  if (weft_task_spawn(&r->task, read ? reader : writer, r, NULL) != 0) {
    FAIL(h, "spawn failed");
    free(r);
    return NULL;
  }
  return r;
}

/* Cancels r's task, joins it and frees r. Returns false when the caller
 * was cancelled meanwhile (r stays, for the hub to stop). */
static bool stop_role(struct hub *h, struct role *r) {
  /* Cancelled already: by the chaos, whose join the hub's stop cut short;
   * the task may have finished since. */
  bool again = r->cancelled;
  r->cancelled = true;
  int rc = weft_task_cancel(r->task);
  if (rc != 0 && !(rc == -ESRCH && (again || h->failed)))
    FAIL(h, "cancel: %s", weft_strerror(rc));
  rc = weft_task_join(r->task, WEFT_FOREVER, NULL);
  if (rc == -ECANCELED)
    return false;
  if (rc != 0)
    FAIL(h, "join of a cancelled task: %s", weft_strerror(rc));
  weft_task_detach(r->task);
  free(r);
  return true;
}

/* Cancels a random reader or writer and starts another in its place. */
static void *chaos(void *arg) {
  struct hub *h = arg;
  while (!h->failed &&
         nap(h, stress_next(&h->seed) % 500, &h->stopping, "chaos")) {
    struct stream *s = &h->s[stress_next(&h->seed) % STREAMS];
    unsigned pick = stress_next(&h->seed) % (unsigned)(s->readers + 1);
    struct role **slot = pick == 0 ? &s->writer : &s->reader[pick - 1];
    if (!*slot)
      continue;
    if (!stop_role(h, *slot))
      break; /* the chaos itself is being stopped; the hub stops *slot */
    h->st.cancels++;
    *slot = start(h, s, pick != 0);
  }
  return NULL;
}

/* --- the close race ---------------------------------------------------- */

enum {
  V_READ,  /* read(), recv() or readv() */
  V_POLL,  /* poll(POLLIN, no timeout or a long one) */
  V_WRITE, /* a write larger than the socket takes */
};

/* What is done to a victim's fd, sv[0] of a fresh socket pair. */
enum {
  CLOSE,            /* close(sv[0]) */
  DATA_THEN_CLOSE,  /* bytes written to sv[1], maybe yields, close(sv[0]) */
  CLOSE_PEER,       /* close(sv[1]) */
  DUP2_OVER,        /* dup2 or dup3 of sv[1] onto sv[0] */
  CANCEL_AND_CLOSE, /* the first victim cancelled, sv[0] closed, either
                       first, with no switch between */
  ACTIONS
};

struct victim {
  int fd, kind;
  unsigned how;
  bool entered, done, done_before;
  ssize_t n;
  int err;
  short revents;
  size_t len;
  unsigned char *buf;
  weft_task *task;
};

/* Whether a second reader parks on the victim's fd, waiting through an
 * epoll fd of its own (src/hook/wait.c); on unless
 * STRESS_HOOK_SECOND_VICTIM=0. */
static bool second_victim;

static const char *kind_name(int kind) {
  return kind == V_READ ? "a read" : kind == V_POLL ? "poll" : "a write";
}

static void *victim_main(void *arg) {
  struct victim *v = arg;
  /* Nothing parks between here and the wait inside the call, so once the
   * closer runs again the call is parked (or has returned). */
  v->entered = true;
  errno = 0;
  if (v->kind == V_READ) {
    if (v->how == 0)
      v->n = read(v->fd, v->buf, 64);
    else if (v->how == 1)
      v->n = recv(v->fd, v->buf, 64, 0);
    else {
      struct iovec iov[2] = {{v->buf, 8}, {v->buf + 8, 56}};
      v->n = readv(v->fd, iov, 2);
    }
  } else if (v->kind == V_POLL) {
    struct pollfd p = {.fd = v->fd, .events = POLLIN};
    v->n = poll(&p, 1, v->how == 0 ? -1 : 60000);
    v->revents = p.revents;
  } else {
    v->n = v->how == 0 ? write(v->fd, v->buf, v->len)
                       : send(v->fd, v->buf, v->len, MSG_NOSIGNAL);
  }
  v->err = errno;
  v->done = true;
  return NULL;
}

/* Starts v's task and lets it park. */
static bool park_victim(struct hub *h, struct victim *v) {
  v->buf = calloc(1, v->kind == V_WRITE ? v->len : 64);
  if (weft_task_spawn(&v->task, victim_main, v, NULL) != 0) {
    FAIL(h, "spawn failed");
    v->task = NULL;
    return false;
  }
  for (int i = 0; !v->entered && i < 10000; i++)
    usleep(0); /* a yield, through the hooks */
  if (!v->entered)
    FAIL(h, "a victim task never ran");
  return v->entered;
}

/* Joins v's task (it must end within seconds) and checks how its call
 * ended. */
static void end_victim(struct hub *h, struct victim *v, unsigned action,
                       unsigned sent) {
  static const char *const names[ACTIONS] = {
      "its close", "data then its close", "closing the peer", "a dup2 over it",
      "a cancel and its close"};
  int rc = weft_task_join(v->task, WEFT_SEC(5), NULL);
  if (rc == -ETIMEDOUT) {
    FAIL(h,
         "a task blocked in %s (how %u) on fd %d was not woken by %s in "
         "5 s",
         kind_name(v->kind), v->how, v->fd, names[action]);
    weft_task_cancel(v->task); /* it ends with ECANCELED: no news */
    weft_task_join(v->task, WEFT_FOREVER, NULL);
    weft_task_detach(v->task);
    free(v->buf);
    return;
  }
  if (rc != 0)
    FAIL(h, "join of a victim: %s", weft_strerror(rc));
  weft_task_detach(v->task);
  const char *ended = NULL;
  if (action == CLOSE_PEER) {
    /* A read sees the end of the stream; a poll sees it readable. */
    if (v->kind == V_READ && v->n == 0)
      h->st.close_eof++;
    else if (v->kind == V_POLL && v->n == 1 &&
             (v->revents & (POLLIN | POLLHUP)))
      h->st.close_eof++;
    else
      ended = "not at the end of the stream";
  } else if (action == DATA_THEN_CLOSE && v->done_before) {
    if (v->kind == V_READ && v->n == (ssize_t)sent)
      h->st.close_data++;
    else if (v->kind == V_POLL && v->n == 1 && (v->revents & POLLIN))
      h->st.close_data++;
    else
      ended = "without the data that came before the close";
  } else if (v->n == -1 && v->err == EBADF) {
    h->st.close_ebadf++;
  } else if (v->n == -1 && v->err == ECANCELED && action == CANCEL_AND_CLOSE) {
    h->st.close_ecanceled++;
  } else if (v->kind == V_WRITE && v->n > 0 && (size_t)v->n < v->len) {
    h->st.close_write_short++; /* what it moved before the close */
  } else if (v->kind == V_POLL && v->n == 1 && (v->revents & POLLNVAL)) {
    h->st.close_ebadf++;
  } else if (v->kind == V_POLL && v->n == 1 &&
             (action == DUP2_OVER ||
              (action == DATA_THEN_CLOSE && (v->revents & POLLIN)))) {
    /* poll answers for what the number holds when it looks again, as
     * libc's poll does at its start: after a dup2, the new file (here sv[1],
     * whose peer is gone); data that came first, readable. */
    h->st.close_data++;
  } else {
    ended = "not with EBADF";
  }
  if (ended)
    FAIL(h,
         "a task in %s (how %u) ended %s after %s: returned %zd, errno "
         "%s, revents %#x",
         kind_name(v->kind), v->how, ended, names[action], v->n,
         strerror(v->err), (unsigned)v->revents);
  free(v->buf);
}

/* One round: a victim (or two) parks on one end of a fresh socket pair,
 * and that end is closed (or replaced by dup2/dup3, or the other end is
 * closed) under it. */
static void close_race(struct hub *h) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
    FAIL(h, "socketpair: %s", strerror(errno));
    return;
  }
  unsigned action = stress_next(&h->seed) % ACTIONS;
  struct victim v[2] = {
      {.fd = sv[0], .how = stress_next(&h->seed) % 3},
      {.fd = sv[0], .kind = V_READ, .how = stress_next(&h->seed) % 3}};
  int victims = 1;
  unsigned k = stress_next(&h->seed) % 8;
  v[0].kind = k < 5 ? V_READ : k < 7 ? V_POLL : V_WRITE;
  if (v[0].kind == V_POLL)
    v[0].how %= 2;
  if (v[0].kind == V_WRITE) {
    v[0].how %= 2;
    v[0].len = 1 << 20; /* more than an AF_UNIX socket buffers */
    if (action == DATA_THEN_CLOSE || action == CLOSE_PEER)
      action = CLOSE; /* its own end goes */
  } else if (second_victim && stress_next(&h->seed) % 2) {
    victims = 2;
  }
  for (int i = 0; i < victims; i++)
    if (!park_victim(h, &v[i])) {
      victims = i;
      break;
    }
  for (unsigned i = stress_next(&h->seed) % 3; i > 0; i--)
    usleep(0); /* parked for a while, or not */
  for (int i = 0; i < victims; i++)
    if (v[i].done)
      FAIL(h, "a victim's call returned before anything happened: %zd (%s)",
           v[i].n, strerror(v[i].err));
  check_blocking(h, sv[0], "close race");
  check_blocking(h, sv[1], "close race");
  unsigned sent = 0;
  if (action == DATA_THEN_CLOSE) {
    /* Data first: a victim may be woken by it, and even have run, by the
     * time of the close. */
    sent = 1 + stress_next(&h->seed) % 16;
    static const unsigned char data[16];
    if (write(sv[1], data, sent) != (ssize_t)sent)
      FAIL(h, "a write to a spare socket failed: %s", strerror(errno));
    for (unsigned i = stress_next(&h->seed) % 3; i > 0; i--)
      usleep(0);
  }
  for (int i = 0; i < victims; i++)
    v[i].done_before = v[i].done;
  bool cancel_first = stress_next(&h->seed) % 2;
  if (action == CANCEL_AND_CLOSE && victims > 0 && cancel_first)
    weft_task_cancel(v[0].task);
  if (action == CLOSE_PEER) {
    close(sv[1]);
  } else if (action == DUP2_OVER) {
    /* sv[0] becomes a second name of sv[1]'s socket. */
    int rc = stress_next(&h->seed) % 2 ? dup2(sv[1], sv[0])
                                       : dup3(sv[1], sv[0], O_CLOEXEC);
    if (rc != sv[0])
      FAIL(h, "dup2/dup3 over a waited fd: %d (%s)", rc, strerror(errno));
  } else if (close(sv[0]) != 0) {
    FAIL(h, "close of a waited fd: %s", strerror(errno));
  }
  if (action == CANCEL_AND_CLOSE && victims > 0 && !cancel_first)
    weft_task_cancel(v[0].task);
  h->st.closes++;
  for (int i = 0; i < victims; i++)
    end_victim(h, &v[i], action, sent);
  if (action == CLOSE_PEER || action == DUP2_OVER)
    close(sv[0]);
  if (action != CLOSE_PEER)
    close(sv[1]);
}

/* Keeps racing closes against parked calls. A round runs whole (its waits
 * are bounded); a cancellation ends the task between rounds. */
static void *closer(void *arg) {
  struct hub *h = arg;
  while (!h->failed &&
         nap(h, stress_next(&h->seed) % 2000, &h->stopping, "closer")) {
    weft_task_shield();
    close_race(h);
    if (weft_task_unshield() == -ECANCELED)
      break;
  }
  return NULL;
}

/* --- the hub ------------------------------------------------------------ */

static void set_timeout(struct hub *h, int fd, int opt, int64_t ns) {
  struct timeval tv = {.tv_sec = 0, .tv_usec = (suseconds_t)(ns / 1000)};
  if (setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv) != 0)
    FAIL(h, "setsockopt: %s", strerror(errno));
}

static void drain(struct hub *h, struct stream *s, unsigned char *buf) {
  while (s->received < s->sent && !h->failed) {
    struct pollfd p = {.fd = s->rfd, .events = POLLIN};
    if (poll(&p, 1, 10000) != 1) {
      FAIL(h, "%llu bytes sent were never delivered",
           (unsigned long long)(s->sent - s->received));
      return;
    }
    ssize_t n = read(s->rfd, buf, BUF);
    if (n <= 0) {
      FAIL(h, "a read of a readable fd returned %zd (%s)", n, strerror(errno));
      return;
    }
    take(h, s, buf, n, "drain");
  }
  if (h->failed)
    return;
  errno = 0;
  ssize_t more = recv(s->rfd, buf, 1, MSG_DONTWAIT);
  if (more != -1 || errno != EAGAIN)
    FAIL(h,
         "more was delivered than sent: recv(MSG_DONTWAIT) returned %zd "
         "(%s)",
         more, strerror(errno));
  check_blocking(h, s->rfd, "drain");
  check_blocking(h, s->wfd, "drain");
}

static void *hub_main(void *arg) {
  struct hub *h = arg;
  if (!weft_hook_enabled()) {
    FAIL(h, "the hooks are not in front of libc in a task");
    return NULL;
  }
  for (int p = 0; p < PAIRS; p++) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
      FAIL(h, "socketpair: %s", strerror(errno));
      return NULL;
    }
    h->s[2 * p] = (struct stream){.rfd = sv[1], .wfd = sv[0]};
    h->s[2 * p + 1] = (struct stream){.rfd = sv[0], .wfd = sv[1]};
  }
  for (int i = 0; i < STREAMS; i++) {
    struct stream *s = &h->s[i];
    s->readers = i % 3 == 2 ? 2 : 1;
    if (i % 4 == 1) {
      s->rcvtimeo = WEFT_US(500 + stress_next(&h->seed) % 2500);
      set_timeout(h, s->rfd, SO_RCVTIMEO, s->rcvtimeo);
    }
    if (i % 4 == 2) {
      s->sndtimeo = WEFT_US(500 + stress_next(&h->seed) % 2500);
      set_timeout(h, s->wfd, SO_SNDTIMEO, s->sndtimeo);
    }
    for (int k = 0; k < s->readers; k++)
      s->reader[k] = start(h, s, true);
    s->writer = start(h, s, false);
  }
  weft_task *c, *cl;
  weft_task_spawn(&c, chaos, h, NULL);
  weft_task_spawn(&cl, closer, h, NULL);
  int64_t ns = (int64_t)(h->seconds * 1e9);
  struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
  int64_t t0 = weft_now();
  if (nanosleep(&ts, NULL) != 0)
    FAIL(h, "nanosleep: %s", strerror(errno));
  else if (weft_now() - t0 < ns)
    FAIL(h, "nanosleep returned early");
  /* Stop: the chaos and the closer first, then every reader and writer. */
  h->stopping = true;
  weft_task_cancel(c);
  weft_task_join(c, WEFT_FOREVER, NULL);
  weft_task_cancel(cl);
  weft_task_join(cl, WEFT_FOREVER, NULL);
  for (int i = 0; i < STREAMS; i++) {
    struct stream *s = &h->s[i];
    for (int k = 0; k < s->readers; k++)
      if (s->reader[k])
        stop_role(h, s->reader[k]);
    if (s->writer)
      stop_role(h, s->writer);
  }
  /* Everything sent is still there to read, in order, and no more. */
  unsigned char *buf = malloc(BUF);
  for (int i = 0; i < STREAMS; i++)
    drain(h, &h->s[i], buf);
  free(buf);
  for (int i = 0; i < STREAMS; i++) {
    h->moved += (long)h->s[i].sent;
    if (i % 2 == 0) {
      close(h->s[i].rfd);
      close(h->s[i].wfd);
    }
  }
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
  for (size_t i = 0; i < sizeof pattern; i++)
    pattern[i] = (unsigned char)(i % 251);
  env = getenv("STRESS_HOOK_SECOND_VICTIM");
  second_victim = !(env && strcmp(env, "0") == 0);
  if (!weft_hook_installed()) {
    fprintf(stderr, "stress-hook: libweft-hook is not in front of libc\n");
    return 1;
  }
  static struct hub hubs[HUBS];
  pthread_t t[HUBS];
  for (int i = 0; i < HUBS; i++) {
    hubs[i] =
        (struct hub){.seconds = seconds, .seed = 7919u * (unsigned)(i + 1)};
    pthread_create(&t[i], NULL, thread_main, &hubs[i]);
  }
  struct stats a = {0};
  long moved = 0;
  for (int i = 0; i < HUBS; i++) {
    pthread_join(t[i], NULL);
    const struct stats *s = &hubs[i].st;
    a.reads += s->reads;
    a.writes += s->writes;
    a.eagain_reads += s->eagain_reads;
    a.eagain_writes += s->eagain_writes;
    a.short_writes += s->short_writes;
    a.poll_timeouts += s->poll_timeouts;
    a.cancels += s->cancels;
    a.cancelled_short_writes += s->cancelled_short_writes;
    a.sleeps += s->sleeps;
    a.closes += s->closes;
    a.close_ebadf += s->close_ebadf;
    a.close_ecanceled += s->close_ecanceled;
    a.close_data += s->close_data;
    a.close_eof += s->close_eof;
    a.close_write_short += s->close_write_short;
    moved += hubs[i].moved;
  }
  int failed = atomic_load(&failures);
  printf("stress-hook: %.1f s on %d hubs: %ld MiB moved in %ld reads and %ld "
         "writes; SO_RCVTIMEO/SO_SNDTIMEO: %ld EAGAIN reads, %ld EAGAIN and "
         "%ld short writes; %ld poll timeouts, %ld usleeps; %ld "
         "cancellations (%ld short writes); %ld closes under a parked call "
         "(%ld EBADF, %ld ECANCELED, %ld short writes, %ld data first, %ld "
         "EOF): %s\n",
         seconds, HUBS, moved >> 20, a.reads, a.writes, a.eagain_reads,
         a.eagain_writes, a.short_writes, a.poll_timeouts, a.sleeps, a.cancels,
         a.cancelled_short_writes, a.closes, a.close_ebadf, a.close_ecanceled,
         a.close_write_short, a.close_data, a.close_eof,
         failed ? "FAILED" : "ok");
  return failed ? 1 : 0;
}
