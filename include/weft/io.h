/*
 * weft/io.h — cooperative I/O: fd operations that block only the calling
 * task, not its thread.
 *
 * Inside a task, a call that would block parks the task until the fd is
 * ready, the timeout passes (-ETIMEDOUT), the task is cancelled
 * (-ECANCELED) or the fd is closed with weft_io_close (-EBADF); the hub runs
 * other tasks meanwhile. Outside a task the same calls block the thread,
 * as the plain system calls do, with the same timeouts.
 *
 * One task at a time may wait to read an fd, and one to write it; a second
 * gets -EBUSY (gevent refuses two greenlets on one socket the same way).
 *
 *     Python (gevent.socket)          weft
 *     conn, addr = sock.accept()      fd = weft_io_accept(lfd, &sa, &len, t)
 *     sock.connect(addr)              weft_io_connect(fd, &sa, len, t)
 *     sock.recv(n)                    weft_io_recv(fd, buf, n, 0, t)
 *     sock.send(data)                 weft_io_send(fd, data, len, 0, t)
 *     sock.settimeout(t)              the timeout argument of every call
 *
 * The calls on this page share these rules:
 *
 *  - Non-blocking fds. In a task a call must not block its thread, so
 *    weft_io_recv and weft_io_send pass MSG_DONTWAIT, and every other call
 *    sets O_NONBLOCK on the fd (checking first, one fcntl(2) per call, as
 *    gevent and Go set it on every socket they wrap). The flag belongs to
 *    the open file description: other holders of it (a dup, a parent that
 *    shares a pipe) see it too. Outside a task the fd is left as it is.
 *  - Errors: a call returns what the system call returns (a count, a new
 *    fd, 0), or its errno negated (-ECONNRESET, -EPIPE, ...), or -ETIMEDOUT
 *    when the timeout passed first, -ECANCELED when the calling task is
 *    cancelled (during the call, or before it when the call would have to
 *    wait: a cancelled task may still read what is there, or write where
 *    there is room, to clean up), -EBADF when the fd was closed by
 *    weft_io_close while the call waited or is not an open fd, -EBUSY when
 *    another task of the hub waits on the fd the same way.
 *  - A timeout of 0 tries once and never waits (-ETIMEDOUT for "would
 *    block"); WEFT_FOREVER waits without end; any other negative
 *    timeout ("a bad timeout" below) is -EINVAL, before the call touches
 *    the fd (no byte moved, no flag set). Interrupted system calls are
 *    retried; signals never end a call early.
 *  - Outside a task the calls behave as the plain blocking calls, with the
 *    timeout: on a blocking fd the timeout bounds the wait for readiness
 *    (poll(2)), after which the call itself may still block, as the plain
 *    call does: a write until the kernel took all of it, a read if another
 *    thread took what was ready. weft does not switch the fd to
 *    non-blocking for the call, which would race other threads using it.
 *  - A call that fails at once (a socket that does not listen, a pipe's
 *    wrong end, a bad fd, a peer gone, ...) returns its errno at once, in a
 *    task or not, never after the timeout: a call waits only when the
 *    system call would block. On a blocking fd outside a task the call is
 *    first tried without blocking (recvmsg/sendmsg with MSG_DONTWAIT on a
 *    socket, preadv2/pwritev2 with RWF_NOWAIT on a pipe; an accept on a
 *    socket that does not listen, which never blocks), and a wrong access
 *    mode is refused from the fd's flags. The one exception: sendfile(2)'s
 * refusal of an in_fd that is open for reading but cannot be sent from
 * (-EINVAL) comes once out_fd is ready.
 *  - SIGPIPE: weft_io_write, weft_io_writev and weft_io_sendfile are the
 *    caller's write(2), writev(2) and sendfile(2), and raise SIGPIPE on a
 *    pipe or socket whose reader is gone as those do (ignore SIGPIPE, or
 *    use weft_io_send, which never raises it). The writes weft makes on its
 *    own to a caller's fd (weft_hub_dump, weft_hub_dump_on_signal, the
 *    watchdog's reports, messages of weft_msgpipe) never raise SIGPIPE.
 *  - Threads: any thread may call them, on its own fds or shared ones; the
 *    per-fd limit of one waiting reader and one waiting writer is per hub.
 *    From a signal handler: no.
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <weft/core.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_IO_READ  1u /* readable, a peer's EOF, or an error pending */
#define WEFT_IO_WRITE 2u /* writable, or an error pending */
/* For weft_io_wait: wait only if the caller's own call would most likely
 * fail with EAGAIN (see weft_io_found). */
#define WEFT_IO_GUESS 0x80u

/*
 * weft_io_wait — wait up to timeout ns until fd is readable and/or writable,
 * as events asks (WEFT_IO_READ, WEFT_IO_WRITE or both).
 *
 * Returns the events ready (a non-empty subset of what was asked; an
 * error or hang-up on the fd reports all that was asked, so that the next
 * read or write reports it), or: -ETIMEDOUT, -ECANCELED (in a task),
 * -EBADF (fd closed by weft_io_close while waiting, or not an open fd),
 * -EBUSY (another task waits on fd the same way), -EINVAL (events empty
 * or unknown, a bad timeout, WEFT_IO_GUESS with both directions), -EPERM
 * (in a task with the epoll poller, an fd epoll cannot watch, such as a
 * regular file, which poll(2) reports always ready), -ENOMEM. A timeout of
 * 0 polls and never blocks, so it reports readiness, not a cancellation.
 * Blocks the calling task (outside a task: the thread).
 *
 * With WEFT_IO_GUESS in events (one direction), for a caller about to make
 * a call of its own on fd (see weft_io_found): the wait happens only if
 * the hub guesses that the call would fail with EAGAIN, by what the calls
 * before found (a reply read after its request is written) and by nothing
 * having said since that fd may be ready; then the call that would fail is
 * saved, and the wait costs no system call. Otherwise weft_io_wait returns
 * 0 at once, and so it does outside a task, in a cancelled task, with a
 * timeout of 0, and with the poll(2) fallback. Such a wait may end in
 * -ETIMEDOUT or -ECANCELED while fd had become ready: the caller should
 * make its call once before it gives up, as weft's own calls do.
 */
WEFT_API int weft_io_wait(int fd, unsigned events, int64_t timeout);

/* What a call of the caller's own found, for weft_io_found. */
enum {
  WEFT_IO_FOUND_NOT_READY = 1,  /* it failed with EAGAIN, or a poll(2) of
                                   fd with no wait reported nothing */
  WEFT_IO_FOUND_SHORT_READ = 2, /* a read returned fewer bytes than it
                                   asked for (not a MSG_PEEK) */
  WEFT_IO_FOUND_READY = 3,      /* a poll(2), select(2) or the like said fd
                                   is ready */
};

/*
 * weft_io_found — tells the hub of the calling task what a call of the
 * caller's own on fd found, in direction events (WEFT_IO_READ and/or
 * WEFT_IO_WRITE; WEFT_IO_READ alone for a short read), for a caller that
 * drives fd itself: non-blocking calls (read(2) or recv(2) with
 * MSG_DONTWAIT, send(2)) and weft_io_wait when one fails with EAGAIN, as
 * weft's own calls and the hooks (weft/hook.h) do. The hub then arms fd
 * for the next wait without a system call, as for its own calls
 * (docs/io.md, "How the hub waits"), and guesses better when to wait first
 * (WEFT_IO_GUESS).
 *
 * NOT_READY and SHORT_READ must come from a call made by the calling task
 * with no wait or yield of any kind since: they say fd is drained, and the
 * hub trusts that until the kernel says otherwise. A short read says so of
 * a stream (a stream socket, a pipe); the hub tells apart the files where
 * it says nothing (a datagram socket, a terminal). A wrong claim costs
 * time, never a wake-up: a wait for an fd that was in fact ready ends once
 * the hub rechecks it, 25 ms later at most. READY may come at any time.
 *
 * Returns 0, or -EINVAL (events or found unknown, events empty, a short
 * read with WEFT_IO_WRITE), -EBADF (fd < 0); nothing changed then. Outside
 * a task it does nothing and returns 0; with the poll(2) fallback it saves
 * nothing. Never blocks.
 */
WEFT_API int weft_io_found(int fd, unsigned events, int found);

/*
 * weft_io_read, weft_io_write — read(2) and write(2), waiting up to timeout
 * ns for the fd to be ready. They return as soon as some bytes moved, as the
 * system calls do: a count below len is no error (0 from a read is the end
 * of the file). Errors as above (-EINVAL for a bad timeout), plus those of
 * read(2) and write(2).
 * Blocks the calling task (outside a task: the thread).
 */
WEFT_API ssize_t weft_io_read(int fd, void *buf, size_t len, int64_t timeout);
WEFT_API ssize_t weft_io_write(int fd, const void *buf, size_t len,
                               int64_t timeout);

/*
 * weft_io_readv, weft_io_writev — readv(2) and writev(2), waiting up to
 * timeout ns for the fd to be ready; the same returns as weft_io_read and
 * weft_io_write (-EINVAL for a bad timeout), plus -EINVAL for an iovcnt
 * outside 0..IOV_MAX.
 */
WEFT_API ssize_t weft_io_readv(int fd, const struct iovec *iov, int iovcnt,
                               int64_t timeout);
WEFT_API ssize_t weft_io_writev(int fd, const struct iovec *iov, int iovcnt,
                                int64_t timeout);

/*
 * weft_io_recv, weft_io_send — recv(2) and send(2) on a socket, with the
 * caller's MSG_* flags, waiting up to timeout ns. They never change the
 * fd's flags (MSG_DONTWAIT makes each call non-blocking), which also makes
 * them one system call cheaper than weft_io_read and weft_io_write in a
 * task: prefer them for sockets. weft_io_send adds MSG_NOSIGNAL: a peer
 * that closed gives -EPIPE, never SIGPIPE. The flags are those the man
 * pages name: for recv MSG_DONTWAIT, MSG_ERRQUEUE, MSG_OOB, MSG_PEEK,
 * MSG_TRUNC, MSG_WAITALL; for send MSG_CONFIRM, MSG_DONTROUTE,
 * MSG_DONTWAIT, MSG_EOR, MSG_MORE, MSG_NOSIGNAL, MSG_OOB, MSG_ZEROCOPY. Any
 * other bit is -EINVAL before the fd is touched (the kernel would ignore
 * it silently). Returns a count, or the errors above (-EINVAL for a bad
 * timeout or an unknown flag) and those of recv(2) and send(2) (-ENOTSOCK
 * on other fds).
 */
WEFT_API ssize_t weft_io_recv(int fd, void *buf, size_t len, int flags,
                              int64_t timeout);
WEFT_API ssize_t weft_io_send(int fd, const void *buf, size_t len, int flags,
                              int64_t timeout);

/*
 * weft_io_accept — accept a connection on the listening socket fd, waiting
 * up to timeout ns for one; the peer's address goes to addr and *addrlen
 * as with accept(2) (both may be NULL). The new fd is close-on-exec, and
 * in a task non-blocking too. Connections that fail while queued
 * (ECONNABORTED) are skipped. Returns the new fd, or the errors above
 * (-EINVAL for a bad timeout) and those of accept4(2) (-EMFILE, -EINVAL
 * when fd does not listen, ...).
 */
WEFT_API int weft_io_accept(int fd, struct sockaddr *addr, socklen_t *addrlen,
                            int64_t timeout);

/*
 * weft_io_connect — connect the socket fd to addr, waiting up to timeout
 * ns for the connection to be made. Returns 0, or the errors above (-EINVAL
 * for a bad timeout, before connect(2) is called) and those of connect(2)
 * (-ECONNREFUSED, -ENETUNREACH, -EAGAIN at once for a Unix-domain socket whose
 * listener's backlog is full, as connect(2) and Go say: retry later, ...).
 * After -ETIMEDOUT or -ECANCELED the attempt may still go on in the kernel:
 * close the socket. Outside a task a blocking socket is made non-blocking for
 * the call when a timeout bounds it, and blocking again after.
 */
WEFT_API int weft_io_connect(int fd, const struct sockaddr *addr,
                             socklen_t addrlen, int64_t timeout);

/*
 * weft_io_sendfile — sendfile(2): copy up to count bytes from in_fd (a
 * file that can be mapped, at *offset, or at its file offset when offset is
 * NULL) to out_fd, waiting up to timeout ns for out_fd to take them.
 * Returns the count sent (it may be short, as with weft_io_write), or the
 * errors above (-EINVAL for a bad timeout) and those of sendfile(2).
 */
WEFT_API ssize_t weft_io_sendfile(int out_fd, int in_fd, off_t *offset,
                                  size_t count, int64_t timeout);

/* Flags of weft_io_listen. */
#define WEFT_LISTEN_REUSEPORT 1u /* SO_REUSEPORT: several sockets, one port */

/*
 * weft_io_listen — a listening socket for address, as Go's net.Listen and
 * Python's socket.create_server make one:
 *   "host:port"    an IPv4 literal, or a name, which getaddrinfo(3)
 *                  resolves to IPv4 or IPv6 addresses (the first address
 *                  it gives that binds);
 *   "[v6]:port"    an IPv6 literal, which takes brackets, e.g.
 *                  "[::1]:8080" or "[fe80::1%eth0]:80" (IPV6_V6ONLY);
 *   ":port"        every address, IPv6 and IPv4 ("[::]" dual-stack, or
 *                  0.0.0.0 where the host has no IPv6);
 *   "unix:PATH"    a Unix-domain socket at PATH (a leftover socket file at
 *                  PATH that nobody listens on is replaced; any other file
 *                  there is -EADDRINUSE); "unix:@NAME" an abstract one.
 * A port is decimal, 0 .. 65535; 0 lets the kernel choose (getsockname(2)
 * tells which). TCP sockets get SO_REUSEADDR, and with
 * WEFT_LISTEN_REUSEPORT also SO_REUSEPORT (Unix sockets ignore the flag).
 * backlog is listen(2)'s (0: SOMAXCONN). The fd is non-blocking and
 * close-on-exec.
 * Returns the fd, or -EINVAL (address NULL or malformed: no port, a port
 * above 65535 or with anything after it, an IPv6 literal without
 * brackets, an empty Unix path or name; an unknown flag, a negative
 * backlog: all checked before any system call), -ENAMETOOLONG (a Unix
 * path longer than sun_path), -EADDRNOTAVAIL (a name that does not
 * resolve, an address not on this host), and what socket(2), bind(2) and
 * listen(2) report: -EADDRINUSE, -EACCES (a port below 1024 without the
 * right), -ENOENT (a Unix path in a missing directory), -EMFILE, ...
 * When a name gives several addresses and none binds, the first one's
 * error. Nothing is left open when it fails (nor a Unix socket file this
 * call made). Blocks only for name resolution (literals never resolve);
 * any thread or task.
 */
WEFT_API int weft_io_listen(const char *address, int backlog, unsigned flags);

/*
 * weft_io_sendall — send all len bytes of buf on the socket fd (Python's
 * socket.sendall), with weft_io_send's flags, waiting as often as needed;
 * timeout bounds the whole call, not each send (a send that need not
 * wait still goes once the time has run out). Returns len (0 for a len of
 * 0, without a system call), or a negative errno as weft_io_send gives
 * (-ETIMEDOUT when the time ran out, -ECANCELED, -EPIPE, ...; -EINVAL for
 * a bad timeout, an unknown flag or a len above SSIZE_MAX, before the fd
 * is touched); after an error an unknown part of buf may have been sent,
 * so the connection is best closed. Blocks the calling task (outside a
 * task: the thread).
 */
WEFT_API ssize_t weft_io_sendall(int fd, const void *buf, size_t len, int flags,
                                 int64_t timeout);

/*
 * weft_signal_wait — wait up to timeout ns for one of the signals in set,
 * and take it: a signal as an event (Python: signal.sigwait; gevent:
 * gevent.signal_handler). Returns the signal's number, or -ETIMEDOUT,
 * -ECANCELED (in a task), -EINVAL (set NULL, or a negative timeout other
 * than WEFT_FOREVER: no signal is blocked then), -EMFILE or -ENFILE (no fd
 * for the signalfd), -ENOMEM.
 *
 * The signals of set are blocked in the calling thread (pthread_sigmask),
 * and stay blocked after the call, so that their default action cannot
 * end the process while no task waits; a process-directed signal still
 * goes to any thread that does not block it, so in a program with several
 * threads block them in main before starting the others. Each signal wakes
 * one waiter; signals of one kind that come while none waits are merged
 * into one, as the kernel keeps a standard signal pending once.
 * Blocks the calling task (outside a task: the thread). A server's
 * shutdown on SIGINT or SIGTERM:
 *
 *     sigset_t set;
 *     sigemptyset(&set);
 *     sigaddset(&set, SIGINT);
 *     sigaddset(&set, SIGTERM);
 *     weft_signal_wait(&set, WEFT_FOREVER);
 *     weft_task_cancel(acceptor);   // its accept returns -ECANCELED
 */
WEFT_API int weft_signal_wait(const sigset_t *set, int64_t timeout);

/*
 * weft_hub_dump_on_signal — write the calling hub's dump (weft_hub_dump) to
 * fd each time signo arrives, e.g. SIGUSR1 and 2 (stderr), as Go's SIGQUIT
 * dumps goroutines. It spawns a daemon task (see weft_task_opts) that waits
 * for the signal, so it neither keeps weft_run going nor counts as a
 * deadlocked task, and ends with the hub. A dump that fails (fd closed, a
 * pipe whose reader is gone: never a SIGPIPE, as weft_hub_dump) is
 * dropped, and the task waits for the next signal. Returns 0, -EINVAL (not a
 * signal that can be caught), -EBADF (fd negative), -EPERM (not from a task),
 * -ENOMEM. The signal is blocked in the hub's thread as weft_signal_wait
 * does.
 */
WEFT_API int weft_hub_dump_on_signal(int signo, int fd);

/*
 * weft_io_close — close fd, first waking every task of this thread's hub
 * that waits on it with -EBADF (closing an fd others wait on with plain
 * close(2) leaves them waiting). Returns 0 or close(2)'s negative errno.
 * Does not block. From a task or any thread; tasks of other threads' hubs
 * are not woken.
 */
WEFT_API int weft_io_close(int fd);

/*
 * weft_io_forget — what weft_io_close does before it closes: wake every
 * task of this thread's hub that waits on fd with -EBADF, and drop what the
 * hub's poller keeps about fd. For code that closes or replaces fds by
 * other means (fclose, dup2, a library's own close), just before it does.
 * fd itself is left open. Returns 0, or -EBADF for a negative fd. Does not
 * block. From a task or any thread (outside a hub it does nothing).
 */
WEFT_API int weft_io_forget(int fd);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_IO_H */
