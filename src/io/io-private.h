/*
 * The io layer's shared pieces: the waits its calls build on.
 */
#ifndef WEFT_IO_PRIVATE_H
#define WEFT_IO_PRIVATE_H

#include <stdint.h>
#include <sys/socket.h>
#include <weft/hub.h>

/* The MSG_* flags recv(2) and send(2) document, which weft_io_recv and
 * weft_io_send (and weft_io_sendall, with send's) accept. The kernel
 * ignores bits it does not know, so a mistyped flag would pass silently;
 * weft refuses it. */
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY 0x4000000
#endif
#define WEFT__IO_RECV_FLAGS                                                    \
  (MSG_DONTWAIT | MSG_ERRQUEUE | MSG_OOB | MSG_PEEK | MSG_TRUNC | MSG_WAITALL)
#define WEFT__IO_SEND_FLAGS                                                    \
  (MSG_CONFIRM | MSG_DONTROUTE | MSG_DONTWAIT | MSG_EOR | MSG_MORE |           \
   MSG_NOSIGNAL | MSG_OOB | MSG_ZEROCOPY)

/* Blocks the calling thread in poll(2) until fd has one of events
 * (WEFT_IO_READ, WEFT_IO_WRITE) or the deadline (absolute ns; INT64_MAX:
 * none; at or before now: poll once) passes. Returns the ready events, or
 * -ETIMEDOUT, -EBADF (not an open fd), or poll's errno. Signals do not end
 * it early. */
int weft__io_wait_thread(int fd, unsigned events, int64_t deadline);

/* Waits until fd has one of events (WEFT_IO_*) or the deadline passes: the
 * running task self parks in its hub (weft__hub_wait_fd), or with self
 * NULL the thread polls (weft__io_wait_thread). Returns the ready events
 * (never none), or a negative errno as those two do. */
int weft__io_wait_until(weft_task *self, int fd, unsigned events,
                        int64_t deadline);

/* With WEFT_IO_READ in weft__io_wait_until's events, in a task: of the hubs
 * (of this process or others) that wait on fd this way, wake one per
 * readiness (WEFT__POLL_EXCLUSIVE). Accepts on a shared listening socket
 * ask for it. */
#define WEFT__IO_EXCLUSIVE 0x100u

/* Sets O_NONBLOCK on fd if it is not set. Returns 0 (it was set), 1 (it
 * was not: weft had not used this file in a task), or fcntl's negative
 * errno. */
int weft__io_make_nonblocking(int fd);

/* What to report for what the poller saw (WEFT__POLL_*), given what was
 * asked (WEFT_IO_*): an error or a hang-up reports all that was asked, so
 * that the next read or write sees it. */
unsigned weft__io_events(unsigned asked, unsigned got);

/* WEFT_IO_* as the poller's WEFT__POLL_*. */
unsigned weft__io_poller_events(unsigned io);

/* The kinds of call a guess that an fd blocks is kept for (see
 * weft__hub_fd_wait_first): the data calls of one direction are one kind,
 * whoever makes them (weft's own, or a caller's with WEFT_IO_GUESS),
 * accept another; 0 takes no guess. */
enum { WEFT__IO_NO_GUESS, WEFT__IO_READS, WEFT__IO_WRITES, WEFT__IO_ACCEPTS };

#endif
