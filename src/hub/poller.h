/*
 * The poller: what a hub blocks in when no task is runnable — fd readiness,
 * a deadline, and a wake-up from other threads. A small interface with one
 * file per backend, chosen by CMake (WEFT_POLLER): poller-epoll.c on Linux,
 * poller-poll.c, the portable fallback that CI builds and tests too. A new
 * backend (io_uring, kqueue) is one more file.
 *
 * Interest is one-shot and per fd: weft__poller_set arms an fd for some
 * events, with a pointer handed back with them, replacing what was armed
 * before; the first report of the fd disarms it, and events 0 disarms and
 * forgets it. One-shot suits the hub, which arms an fd each time a task
 * waits on it: the report that wakes the task disarms the fd with it.
 * Arming reports what is ready at the time, as poll(2) would: a report
 * that a task did not act on is made again when the fd is armed again.
 *
 * What arming costs is the backend's affair. poll keeps a pollfd per armed
 * fd. epoll registers an fd once, edge-triggered (for writing too from the
 * first arming for writing on), and keeps per direction a hint that the fd
 * may be ready; arming a direction whose hint is clear costs no system
 * call. Callers clear hints by telling
 * the poller what they learnt by trying a system call on the fd
 * (weft__poller_not_ready), which is what makes a wait before each request
 * of a keep-alive connection free; see poller-epoll.c for the invariant.
 *
 * Arming works whatever the kernel did with the fd meanwhile: an fd closed
 * with close(2) and its number reused is armed afresh. With poll that is
 * free; with epoll an arming that trusted the poller's record of the
 * number is checked with the kernel when no report came for it within
 * WEFT__POLL_RECHECK, so a reused number costs that delay at most (none
 * after the fd was forgotten, events 0, or weft__poller_doubt, which
 * callers use when they close an fd or make one).
 *
 * Thread safety: a poller belongs to one hub and is used by its thread,
 * except weft__poller_wake, which any thread may call, and a signal
 * handler too (it is one write(2)).
 */
#ifndef WEFT_HUB_POLLER_H
#define WEFT_HUB_POLLER_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

enum {
  WEFT__POLL_IN = 1,  /* readable, or a peer closed its end */
  WEFT__POLL_OUT = 2, /* writable */
  WEFT__POLL_ERR = 4, /* an error is pending (reported, never asked for) */
  WEFT__POLL_HUP = 8, /* hung up (reported, never asked for) */
  /* Asked for with IN (never reported): of the pollers of several hubs or
   * processes armed on one fd, the kernel wakes only one (epoll's
   * EPOLLEXCLUSIVE), so that a listening socket shared by many does not wake
   * them all for one connection. The poller that reported it goes to the
   * back of the kernel's queue when it arms again, so that connections
   * spread over the idle pollers. Backends that cannot (poll) ignore it. */
  WEFT__POLL_EXCLUSIVE = 16,
};

typedef struct weft__poller weft__poller;

typedef struct weft__poll_event {
  int fd;
  unsigned events; /* WEFT__POLL_* that are ready */
  void *data;      /* as given to weft__poller_set */
} weft__poll_event;

/* The check every backend's weft__poller_set starts with: 0, or the error
 * for events outside IN|OUT or a negative fd. */
static inline int weft__poller_check(int fd, unsigned events) {
  if (events &
      ~(unsigned)(WEFT__POLL_IN | WEFT__POLL_OUT | WEFT__POLL_EXCLUSIVE))
    return -EINVAL;
  return fd < 0 ? -EBADF : 0;
}

/* Makes a poller. Returns 0, -ENOMEM, -EMFILE or -ENFILE. */
int weft__poller_new(weft__poller **out);

/* Releases it; fds it watched are not closed. */
void weft__poller_free(weft__poller *p);

/* In a child made by fork: closes the fds of the parent's poller p (its
 * epoll fd, its wake fd), which the child inherited and will never use.
 * p's memory stays as it is, unreachable. */
void weft__poller_close_in_child(weft__poller *p);

/* Arms fd for events (WEFT__POLL_IN | WEFT__POLL_OUT) with data, until its
 * first report; or disarms and forgets it when events is 0 (forgetting an
 * unwatched fd is not an error).
 * Returns 0, -EBADF (not an open fd), -EPERM (a file that cannot be polled,
 * such as a regular file, with epoll), -EINVAL (events outside IN|OUT), or
 * -ENOMEM. On error nothing changed, but for forgetting, which forgets the
 * poller's record whatever the kernel said. */
int weft__poller_set(weft__poller *p, int fd, unsigned events, void *data);

/* What a caller learnt by trying a system call on fd: that fd is not ready
 * for events (WEFT__POLL_IN, WEFT__POLL_OUT) now. short_read false: the
 * call said EAGAIN. short_read true: a read (events WEFT__POLL_IN) returned
 * fewer bytes than asked, which says the same of a stream socket or a pipe
 * that has not reported an end of file, and nothing of other files (a
 * datagram socket, a tty), which the backend tells apart itself. Must be
 * called in the same run of the caller's task as the system call, with no
 * weft__poller_wait between the two. Costs at most one system call per
 * registration (what kind of file fd is), and nothing with poll. */
void weft__poller_not_ready(weft__poller *p, int fd, unsigned events,
                            bool short_read);

/* Whether arming fd for events (WEFT__POLL_IN or WEFT__POLL_OUT) now would
 * cost no system call and wait for readiness still to come: fd is
 * registered for the direction, with its hint clear (a caller found it not
 * ready, and no report or weft__poller_maybe_ready came since). Always
 * false with poll. */
bool weft__poller_known_not_ready(weft__poller *p, int fd, unsigned events);

/* A caller saw fd ready for events (a poll(2) of its own said so): sets the
 * hints, so that the next arming asks the kernel. No system call. */
void weft__poller_maybe_ready(weft__poller *p, int fd, unsigned events);

/* The number fd now names a file the poller may never have seen (accept(2)
 * made it, or a socket is about to connect): its next arming asks the
 * kernel rather than trust the poller's record. No system call. */
void weft__poller_doubt(weft__poller *p, int fd);

/* How long an arming that trusted the poller's record waits for a report
 * before the poller checks the record with the kernel (epoll): what a
 * number reused behind weft's back may cost, and what a wait that lasts
 * longer costs (one epoll_ctl). Longer than the gap between requests of a
 * busy keep-alive connection: with wrk's 1000 connections on one httpd
 * worker (about 8 ms apart), 10 ms rechecked 0.23 waits per request, 25 ms
 * 0.003. */
#define WEFT__POLL_RECHECK ((int64_t)25 * 1000 * 1000) /* 25 ms */

/* Waits until some armed fd is ready, the deadline (absolute
 * CLOCK_MONOTONIC ns; INT64_MAX for none, anything <= now to poll) passes,
 * or weft__poller_wake is called. Fills up to max events and returns how
 * many (0 on timeout, a wake or a signal), or a negative errno. Each fd
 * reported is disarmed, whatever part of its events the report concerns. */
int weft__poller_wait(weft__poller *p, weft__poll_event *evs, int max,
                      int64_t deadline);

/* Makes the current or next weft__poller_wait return. Wakes before a wait
 * are not lost; several coalesce into one. Any thread; async-signal-safe. */
void weft__poller_wake(weft__poller *p);

/* The backend's name: "epoll" or "poll". */
const char *weft__poller_backend(void);

#endif
