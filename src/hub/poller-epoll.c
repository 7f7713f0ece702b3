/*
 * The epoll poller, Linux's. See poller.h.
 *
 * Registration. An fd is registered once (EPOLL_CTL_ADD), edge-triggered
 * for reading and a peer's shutdown (EPOLLIN | EPOLLRDHUP | EPOLLET), and
 * for writing too (EPOLLOUT) from the first arming for writing on; it
 * stays registered until it is forgotten (events 0: weft_io_close, or a
 * wait that left without its report), when it is deleted. Writing is left
 * out until asked for because a TCP socket is woken for writing about once
 * per exchange (the peer's acknowledgement frees its send buffer), which
 * nobody waits for when sends complete at once, as a server's mostly do:
 * registered from the start (as nginx and Go register), those edges were
 * nearly one report in two of weft's TCP echo benchmark, each polled by
 * the kernel and handled here for nothing. Adding EPOLLOUT later is one
 * MOD in a file's life. Arming is then the table's affair: the entry's
 * events say which directions a report is wanted for, and the caller's
 * pointer lives there too. The kernel reports each readiness once
 * (edge-triggered); what comes for a direction nobody armed is kept as a
 * hint.
 *
 * Hints. Per direction, the entry's hint says that the fd may be ready.
 * Every report of the direction sets it, whether it went to a waiter or
 * not (a waiter need not use up all that was ready); it is cleared by an
 * epoll_ctl that registers the fd (the kernel then looks at the file and
 * queues it if ready, ep_insert and ep_modify), and by a caller's evidence
 * (weft__poller_not_ready). The invariant:
 *
 *   While the fd is registered, for a direction, for the file its number
 *   names, and its hint for that direction is clear, every readiness of
 *   the direction since the hint was last cleared is still queued in
 *   epoll's ready list, or was used up before the clearing.
 *
 * An epoll_ctl makes it true. Evidence does too: the caller saw the fd not
 * ready (EAGAIN; a short read) at a moment T in its task's run, and clears
 * the hint in that same run. No epoll_wait runs inside a task's run, so no
 * report came between T and the clearing. Readiness that came after T woke
 * the file's wait queue after T, and every such wake-up puts an
 * edge-triggered fd on the ready list (unless it is there already), where
 * it stays until an epoll_wait takes it; that epoll_wait reports it, which
 * sets the hint again. So arming a direction that is registered and whose
 * hint is clear needs no system call: what will end the wait is queued or yet
 * to come, and the next epoll_wait reports it to the armed entry. That is the
 * race of "try, EAGAIN, wait": an edge between the try and the wait is queued,
 * not lost. Arming a direction whose hint is set makes an EPOLL_CTL_MOD, so
 * that the kernel looks at the file now and queues it if it is ready: a report
 * that a waiter did not use up (weft_io_wait twice, a read shorter than what
 * came) is made again, as the one-shot arming weft had before did, and a
 * hint is never handed to a caller as readiness, stale or not.
 *
 * A short read is weaker evidence than EAGAIN: TCP's urgent data and a
 * Unix socket's message that carries fds end a read early with bytes left.
 * The recheck below bounds what such a wrong clearing costs.
 *
 * Reused numbers. "Registered for the file its number names" is what a
 * close(2) behind weft's back breaks: the kernel drops the registration
 * with the file's last descriptor, or keeps it for the old file when a dup
 * (a fork) keeps that open, and the number may come back for a new file.
 * epoll_ctl resolves a number to the file it names now, so any epoll_ctl
 * notices: MOD fails with ENOENT, and the fd is added afresh. An arming
 * that trusted the table (no system call) is queued for a recheck: if no
 * report came for it within WEFT__POLL_RECHECK, the poller makes that MOD,
 * which also has the kernel report anything a wrong clearing hid. A reused
 * number thus costs a wait that long at most, not a hang. Each
 * registration's reports carry a generation (the high 32 bits of epoll's
 * data, the fd being the low ones), new at every epoll_ctl that registers,
 * and the reports of any other generation (an old file that a dup keeps
 * open under the number, whose edges would otherwise wake the new file's
 * waiters) are dropped. Callers doubt a number they know to name a new
 * file (weft__poller_doubt), whose next arming then asks the kernel.
 *
 * Exclusive arming (WEFT__POLL_EXCLUSIVE) cannot be persistent: the kernel
 * takes EPOLLEXCLUSIVE only with EPOLL_CTL_ADD and refuses it with MOD. So
 * such an fd is added (slot EXCLUSIVE_SLOT) and deleted when it is
 * reported or armed otherwise: two system calls per wait, for the fds that
 * ask (listening sockets, whose waits are few next to their accepts). The
 * delete is also what sends this poller to the back of the socket's queue
 * of waiters, which spreads connections over the idle ones. An fd goes
 * from one kind of registration to the other with a delete and an add.
 *
 * A wake is an eventfd (generation 0), drained when it fires and never
 * reported. The deadline is passed with nanosecond precision through
 * epoll_pwait2 (Linux 5.11) where the kernel has it, else rounded up to
 * whole milliseconds for epoll_wait, so that a wait never returns before
 * its deadline for want of resolution.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fdtable.h"
#include "poller.h"
#include "timer.h"

enum { BATCH = 256 };

/* The entry's slot: how the kernel has the fd registered. */
enum { NO_SLOT, ORDINARY_SLOT, EXCLUSIVE_SLOT };

/* The entry's flags, all forgotten at each epoll_ctl that registers. */
enum {
  F_EOF = 1,    /* a report said RDHUP, HUP or ERR: an end or an error may
                   wait to be read, so a short read clears no hint */
  F_KNOWN = 2,  /* the kind of file is known: */
  F_STREAM = 4, /* a stream socket or a pipe, whose short reads say it is
                   drained */
  F_DOUBT = 8,  /* the number may name a new file: ask the kernel */
  F_OUT = 16,   /* registered for writing too */
};

/* An arming on trust, to recheck at + WEFT__POLL_RECHECK if the entry's
 * seq is still this one and it is still armed. */
struct recheck {
  int fd;
  uint32_t seq;
  int64_t at; /* 0 until the next wait stamps it */
};

struct weft__poller {
  int epfd;
  int wake_fd;
  bool no_pwait2;    /* the kernel said ENOSYS once */
  bool no_exclusive; /* the kernel refused EPOLLEXCLUSIVE once */
  uint32_t gen;      /* the last generation given */
  weft__fdtable fds;
  /* The rechecks, oldest first: a ring of rq_cap (a power of two) indexed
   * by free-running counters; those from rq_new on are not stamped yet. */
  struct recheck *rq;
  uint32_t rq_cap, rq_head, rq_new, rq_tail;
  struct epoll_event got[BATCH];
};

const char *weft__poller_backend(void) { return "epoll"; }

static uint64_t tag(int fd, uint32_t gen) {
  return (uint64_t)gen << 32 | (uint32_t)fd;
}

/* A generation for a new registration; 0 is the wake fd's. */
static uint32_t next_gen(weft__poller *p) {
  if (++p->gen == 0)
    p->gen = 1;
  return p->gen;
}

int weft__poller_new(weft__poller **out) {
  weft__poller *p = malloc(sizeof *p);
  if (!p)
    return -ENOMEM;
  p->no_pwait2 = false;
  p->no_exclusive = false;
  p->gen = 0;
  p->fds = (weft__fdtable){0};
  p->rq = NULL;
  p->rq_cap = p->rq_head = p->rq_new = p->rq_tail = 0;
  p->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (p->epfd < 0) {
    int err = -errno;
    free(p);
    return err;
  }
  p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag(p->wake_fd, 0)};
  if (p->wake_fd < 0 ||
      epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->wake_fd, &ev) != 0) {
    int err = -errno;
    if (p->wake_fd >= 0)
      close(p->wake_fd);
    close(p->epfd);
    free(p);
    return err;
  }
  *out = p;
  return 0;
}

void weft__poller_close_in_child(weft__poller *p) {
  close(p->wake_fd);
  close(p->epfd);
}

void weft__poller_free(weft__poller *p) {
  weft__fdtable_fini(&p->fds);
  free(p->rq);
  close(p->wake_fd);
  close(p->epfd);
  free(p);
}

/* Forgets what the entry says of its fd, but the count of its armings on
 * trust, which must not match a recheck queued before. */
static void forget_entry(weft__fd_entry *e) {
  uint32_t seq = e->seq;
  *e = (weft__fd_entry){0};
  e->seq = seq;
}

/* Registers fd as an ordinary fd, or registers it again, for reading, and
 * for writing when events asks or it was registered so: MOD when the
 * table says it is registered, else ADD; MOD failing with ENOENT (the
 * number names a file the kernel does not have: closed with close(2) and
 * reused) adds, ADD failing with EEXIST (registered, and the table did not
 * know) modifies. Either way the kernel looks at the file and queues it if
 * it is ready, and the registration takes a new generation. On error the
 * entry is unchanged. */
static int register_ordinary(weft__poller *p, weft__fd_entry *e, int fd,
                             unsigned events) {
  int op = e->slot == ORDINARY_SLOT ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  uint32_t gen = next_gen(p);
  bool out = (events & WEFT__POLL_OUT) ||
             (e->slot == ORDINARY_SLOT && (e->flags & F_OUT));
  struct epoll_event ev = {
      .events = EPOLLIN | EPOLLRDHUP | EPOLLET | (out ? EPOLLOUT : 0),
      .data.u64 = tag(fd, gen),
  };
  /* A MOD that succeeds finds the file it registered before: what the
   * entry learnt of its kind still holds. */
  uint8_t kept = e->flags & (F_KNOWN | F_STREAM);
  if (epoll_ctl(p->epfd, op, fd, &ev) != 0) {
    if (op == EPOLL_CTL_MOD && errno == ENOENT)
      op = EPOLL_CTL_ADD;
    else if (op == EPOLL_CTL_ADD && errno == EEXIST)
      op = EPOLL_CTL_MOD;
    else
      return -errno;
    if (epoll_ctl(p->epfd, op, fd, &ev) != 0)
      return -errno;
    kept = 0;
  } else if (op == EPOLL_CTL_ADD) {
    kept = 0;
  }
  e->slot = ORDINARY_SLOT;
  e->gen = gen;
  e->hint = 0;
  e->flags = kept | (out ? F_OUT : 0);
  return 0;
}

/* Adds fd with EPOLLEXCLUSIVE, edge-triggered: an fd that is ready when
 * added is reported once all the same, and an entry that outlives its
 * delete (an fd closed with close(2) while armed, whose file other
 * processes keep open) is reported once per new readiness, not at every
 * wait, and with a generation that is no longer the entry's. Returns 0, a
 * negative errno, or 1 when it must be armed as an ordinary fd: a kernel
 * before 4.5, which refuses the flag (EINVAL, remembered). */
static int arm_exclusive(weft__poller *p, weft__fd_entry *e, int fd,
                         unsigned events, void *data) {
  uint32_t gen = next_gen(p);
  struct epoll_event ev = {.events = EPOLLEXCLUSIVE | EPOLLET,
                           .data.u64 = tag(fd, gen)};
  if (events & WEFT__POLL_IN)
    ev.events |= EPOLLIN;
  if (events & WEFT__POLL_OUT)
    ev.events |= EPOLLOUT;
  if (e->slot && epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL) != 0 &&
      errno != ENOENT)
    return -errno;
  e->slot = NO_SLOT;
  int rc = epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev);
  if (rc != 0 && errno == EEXIST) {
    /* Registered, and the table did not know (a close and a reuse of the
     * number): neither MOD nor ADD reaches it, a delete does. */
    if (epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL) != 0)
      return -errno;
    rc = epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev);
  }
  if (rc != 0) {
    if (errno != EINVAL)
      return -errno;
    p->no_exclusive = true;
    return 1;
  }
  e->slot = EXCLUSIVE_SLOT;
  e->gen = gen;
  e->events = events;
  e->data = data;
  return 0;
}

/* Makes room for one more recheck: false when out of memory. */
static bool recheck_room(weft__poller *p) {
  if (p->rq_tail - p->rq_head < p->rq_cap)
    return true;
  uint32_t cap = p->rq_cap ? p->rq_cap * 2 : 64;
  struct recheck *rq = malloc((size_t)cap * sizeof *rq);
  if (!rq)
    return false;
  uint32_t n = p->rq_tail - p->rq_head;
  for (uint32_t i = 0; i < n; i++)
    rq[i] = p->rq[(p->rq_head + i) & (p->rq_cap - 1)];
  free(p->rq);
  p->rq = rq;
  p->rq_new -= p->rq_head;
  p->rq_head = 0;
  p->rq_tail = n;
  p->rq_cap = cap;
  return true;
}

/* Queues a recheck of the arming on trust being made: false when out of
 * memory (the caller then asks the kernel at once). */
static bool queue_recheck(weft__poller *p, weft__fd_entry *e, int fd) {
  if (!recheck_room(p))
    return false;
  e->seq++;
  p->rq[p->rq_tail++ & (p->rq_cap - 1)] =
      (struct recheck){.fd = fd, .seq = e->seq};
  return true;
}

int weft__poller_set(weft__poller *p, int fd, unsigned events, void *data) {
  int rc = weft__poller_check(fd, events);
  if (rc < 0)
    return rc;
  if (fd == p->wake_fd || fd == p->epfd)
    return -EBADF;
  weft__fd_entry *e = weft__fdtable_get(&p->fds, fd);
  if (events == 0) {
    if (!e)
      return 0;
    /* Should the delete fail, the kernel keeps a registration whose
     * reports no longer match the entry's generation, and which the next
     * ADD finds (EEXIST) and takes over. */
    if (e->slot && epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL) != 0 &&
        errno != ENOENT && errno != EBADF)
      rc = -errno;
    forget_entry(e);
    return rc;
  }
  e = weft__fdtable_reserve(&p->fds, fd);
  if (!e)
    return -ENOMEM;
  if (e->slot == EXCLUSIVE_SLOT) {
    /* Neither MOD nor a second ADD reaches an exclusive registration. */
    if (epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL) != 0 && errno != ENOENT)
      return -errno;
    e->slot = NO_SLOT;
  }
  if ((events & WEFT__POLL_EXCLUSIVE) && !p->no_exclusive) {
    rc = arm_exclusive(p, e, fd, events, data);
    if (rc <= 0)
      return rc;
    /* 1: refused; armed below, as an ordinary fd. */
  }
  /* The directions armed anew: those armed already wait on as they were.
   * With their hints clear the invariant (see the top) lets them be armed
   * on trust, rechecked later (an arming on trust of any direction: the
   * number may have been reused since the fd was last armed); else the
   * kernel is asked now. */
  unsigned fresh = events & ~e->events & (WEFT__POLL_IN | WEFT__POLL_OUT);
  bool ask = e->slot != ORDINARY_SLOT || (e->flags & F_DOUBT) ||
             (e->hint & fresh) ||
             ((fresh & WEFT__POLL_OUT) && !(e->flags & F_OUT));
  if (!ask && !queue_recheck(p, e, fd))
    ask = true; /* no memory to queue the recheck */
  if (ask) {
    rc = register_ordinary(p, e, fd, events);
    if (rc < 0)
      return rc;
  }
  e->events = events;
  e->data = data;
  return 0;
}

void weft__poller_not_ready(weft__poller *p, int fd, unsigned events,
                            bool short_read) {
  weft__fd_entry *e = fd >= 0 ? weft__fdtable_get(&p->fds, fd) : NULL;
  if (!e || e->slot != ORDINARY_SLOT)
    return;
  unsigned clear = e->hint & events & (WEFT__POLL_IN | WEFT__POLL_OUT);
  if (short_read) {
    clear &= WEFT__POLL_IN;
    if (!clear || (e->flags & F_EOF))
      return;
    if (!(e->flags & F_KNOWN)) {
      int type;
      socklen_t len = sizeof type;
      struct stat st;
      bool stream = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0
                        ? type == SOCK_STREAM
                        : errno == ENOTSOCK && fstat(fd, &st) == 0 &&
                              S_ISFIFO(st.st_mode);
      e->flags |= F_KNOWN | (stream ? F_STREAM : 0);
    }
    if (!(e->flags & F_STREAM))
      return;
  }
  e->hint &= (uint8_t)~clear;
}

bool weft__poller_known_not_ready(weft__poller *p, int fd, unsigned events) {
  weft__fd_entry *e = fd >= 0 ? weft__fdtable_get(&p->fds, fd) : NULL;
  return e && e->slot == ORDINARY_SLOT && !(e->flags & F_DOUBT) &&
         !(e->hint & events) &&
         (!(events & WEFT__POLL_OUT) || (e->flags & F_OUT));
}

void weft__poller_maybe_ready(weft__poller *p, int fd, unsigned events) {
  weft__fd_entry *e = fd >= 0 ? weft__fdtable_get(&p->fds, fd) : NULL;
  if (e && e->slot == ORDINARY_SLOT)
    e->hint |= (uint8_t)(events & (WEFT__POLL_IN | WEFT__POLL_OUT));
}

void weft__poller_doubt(weft__poller *p, int fd) {
  weft__fd_entry *e = fd >= 0 ? weft__fdtable_get(&p->fds, fd) : NULL;
  if (e && e->slot == ORDINARY_SLOT)
    e->flags |= F_DOUBT;
}

/* Stamps the rechecks queued since the last wait with now (their armings
 * came between the two waits, so a recheck comes WEFT__POLL_RECHECK after
 * its arming or a turn of the hub later), and makes those that are due:
 * their entries are still armed, with no report since. A registration
 * that no longer holds is made afresh (the kernel then reports what is
 * ready); a number that names no file now, or one epoll cannot watch (a
 * regular file after a reuse), is reported to its waiters as an error,
 * so that their calls, tried again, say so or succeed. Returns how many
 * reports it put in evs (max at most). */
static int run_rechecks(weft__poller *p, int64_t now, weft__poll_event *evs,
                        int max) {
  uint32_t mask = p->rq_cap - 1;
  for (; p->rq_new != p->rq_tail; p->rq_new++)
    p->rq[p->rq_new & mask].at = now;
  int out = 0;
  while (p->rq_head != p->rq_tail && out < max) {
    struct recheck *r = &p->rq[p->rq_head & mask];
    weft__fd_entry *e = weft__fdtable_get(&p->fds, r->fd);
    bool live = e && e->seq == r->seq && e->events && e->slot == ORDINARY_SLOT;
    if (live && now - r->at < WEFT__POLL_RECHECK)
      break; /* the oldest live one is not due: nor are the others */
    if (!live) {
      p->rq_head++;
      continue;
    }
    int rc = register_ordinary(p, e, r->fd, e->events);
    if (rc == -EBADF || rc == -EPERM) {
      evs[out++] = (weft__poll_event){.fd = r->fd,
                                      .events = WEFT__POLL_ERR | WEFT__POLL_HUP,
                                      .data = e->data};
      forget_entry(e);
    } else if (rc < 0) {
      r->at = now; /* a shortage (ENOMEM, ENOSPC): again later */
      break;
    }
    p->rq_head++;
  }
  return out;
}

/* When the oldest live recheck falls due, or INT64_MAX. */
static int64_t next_recheck(weft__poller *p) {
  for (; p->rq_head != p->rq_tail; p->rq_head++) {
    struct recheck *r = &p->rq[p->rq_head & (p->rq_cap - 1)];
    weft__fd_entry *e = weft__fdtable_get(&p->fds, r->fd);
    if (e && e->seq == r->seq && e->events && e->slot == ORDINARY_SLOT)
      return r->at + WEFT__POLL_RECHECK;
  }
  return INT64_MAX;
}

/* One epoll_pwait2 (or epoll_wait) until `until`; returns its count or -1
 * with errno. */
static int kernel_wait(weft__poller *p, int max, int64_t now, int64_t until) {
  int64_t left = until == INT64_MAX ? -1 : until <= now ? 0 : until - now;
  int n = -1;
  if (!p->no_pwait2) {
    struct timespec ts = {left / 1000000000, left % 1000000000};
    n = epoll_pwait2(p->epfd, p->got, max, left < 0 ? NULL : &ts, NULL);
    /* ENOSYS: an older kernel; EPERM: a seccomp filter that does not know
     * the call. Either way, epoll_wait does the same job. */
    if (n < 0 && (errno == ENOSYS || errno == EPERM))
      p->no_pwait2 = true;
  }
  if (p->no_pwait2)
    n = epoll_wait(p->epfd, p->got, max, weft__ms_until(until));
  return n;
}

/* Turns what the kernel reported into reports for armed entries and hints
 * for the rest. Returns how many reports it put in evs. */
static int take(weft__poller *p, int n, weft__poll_event *evs, bool *woken) {
  int out = 0;
  for (int i = 0; i < n; i++) {
    int fd = (int)(uint32_t)p->got[i].data.u64;
    uint32_t gen = (uint32_t)(p->got[i].data.u64 >> 32);
    if (gen == 0) { /* the wake fd */
      uint64_t drained;
      ssize_t r = read(p->wake_fd, &drained, sizeof drained);
      (void)r; /* EAGAIN: another wait drained it; nothing to do */
      *woken = true;
      continue;
    }
    weft__fd_entry *e = weft__fdtable_get(&p->fds, fd);
    if (!e || !e->slot || e->gen != gen)
      continue; /* a registration deleted since, or an older one's */
    unsigned got = 0, g = p->got[i].events;
    if (g & (EPOLLIN | EPOLLRDHUP))
      got |= WEFT__POLL_IN;
    if (g & EPOLLOUT)
      got |= WEFT__POLL_OUT;
    if (g & EPOLLERR)
      got |= WEFT__POLL_ERR;
    if (g & EPOLLHUP)
      got |= WEFT__POLL_HUP;
    if (e->slot == EXCLUSIVE_SLOT) {
      if (!e->events)
        continue; /* reported already; its delete failed */
      /* Made one-shot here. Should the delete fail, the next arming
       * deletes it again. */
      if (epoll_ctl(p->epfd, EPOLL_CTL_DEL, fd, NULL) == 0 || errno == ENOENT)
        e->slot = NO_SLOT;
    } else {
      /* An error or a hang-up concerns both directions: the next read
       * and write will say so. */
      unsigned dirs = got & (WEFT__POLL_IN | WEFT__POLL_OUT);
      if (got & (WEFT__POLL_ERR | WEFT__POLL_HUP))
        dirs = WEFT__POLL_IN | WEFT__POLL_OUT;
      if (g & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        e->flags |= F_EOF;
      e->hint |= (uint8_t)dirs;
      if (!(e->events & dirs))
        continue; /* for nobody: kept as the hint */
    }
    e->events = 0;
    evs[out++] = (weft__poll_event){.fd = fd, .events = got, .data = e->data};
  }
  return out;
}

int weft__poller_wait(weft__poller *p, weft__poll_event *evs, int max,
                      int64_t deadline) {
  if (max <= 0)
    return -EINVAL;
  if (max > BATCH)
    max = BATCH;
  for (;;) {
    int64_t now = weft__now();
    int out = run_rechecks(p, now, evs, max);
    if (out == max)
      return out;
    /* With reports in hand, only a look at what else is ready. */
    int64_t until = out ? now : deadline;
    int64_t due = next_recheck(p);
    bool cut = due < until;
    if (cut)
      until = due;
    int n = kernel_wait(p, max - out, now, until);
    if (n < 0)
      return errno == EINTR || out ? out : -errno;
    bool woken = false;
    out += take(p, n, evs + out, &woken);
    /* Otherwise the wait was cut short for a recheck, or what came was all
     * hints: wait on, until the deadline. */
    if (out || woken || deadline <= now || (n == 0 && !cut))
      return out;
  }
}

void weft__poller_wake(weft__poller *p) {
  uint64_t one = 1;
  ssize_t r = write(p->wake_fd, &one, sizeof one);
  (void)r; /* EAGAIN: the counter is saturated, a wake is pending anyway */
}
