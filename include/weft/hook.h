/*
 * weft/hook.h — unmodified blocking code made cooperative: libc's blocking
 * calls, made in a task, park the task instead of the thread (gevent's
 * monkey.patch_all(), libco's hooks).
 *
 * Linking with the hook library is all it takes:
 *
 *     cc prog.c $(pkg-config --cflags --libs weft weft-hook)
 *     target_link_libraries(prog PRIVATE weft::weft weft::hook)   (CMake)
 *     LD_PRELOAD=libweft-hook.so ./prog                  (a binary as it is)
 *
 * libweft-hook.so defines read, write, recv, send, accept, connect, poll,
 * select, epoll_wait, sleep, nanosleep, close, fcntl and the rest listed in
 * docs/hooks.md, ahead of libc's. A library such as hiredis or libcurl,
 * which calls them through the dynamic linker, then runs one request per
 * task: where it would block, its task parks and the hub runs the others.
 *
 *     Python (gevent)                  weft
 *     from gevent import monkey        link with weft-hook
 *     monkey.patch_all()               (nothing to call)
 *     gevent.spawn(fetch, url)         weft_task_spawn(&t, fetch, url, NULL)
 *
 * What the program sees is libc's behaviour, errno included:
 *
 *  - Outside a task (a plain thread, a hub between its tasks) every call
 *    is libc's, unchanged.
 *  - In a task, a call on an fd the program made blocking waits as libc's
 *    would, but parks only its task. The fd is not switched to
 *    non-blocking for it (MSG_DONTWAIT and RWF_NOWAIT make each try
 *    non-blocking instead), so fcntl(F_GETFL) reads what the program set,
 *    and children and other threads that share the fd see no change. The
 *    one exception is accept on a blocking listening socket, which has no
 *    such per-call flag: the hooks set O_NONBLOCK on it, and fcntl and
 *    ioctl through the hooks keep showing the program's own setting (a
 *    child that inherits the socket across exec sees the flag).
 *  - On an fd the program made non-blocking, calls return EAGAIN as they
 *    do without the hooks.
 *  - Timeouts: SO_RCVTIMEO and SO_SNDTIMEO bound the waits as in libc
 *    (EAGAIN; EINPROGRESS for a connect); so do poll's, select's,
 *    epoll_wait's and the sleeps' own. A deadline of weft_deadline_set
 *    ends a hooked wait with ETIMEDOUT.
 *  - Cancellation: a cancelled task's hooked call fails with ECANCELED
 *    (clock_nanosleep returns it; sleep returns the seconds left, with
 *    errno ECANCELED; getaddrinfo returns EAI_SYSTEM with it). A write that
 *    had moved some bytes returns their count, as libc's does when a
 *    signal interrupts it. A hooked call never fails with EINTR.
 *  - Regular files and block devices are read and written with the plain
 *    calls: the kernel has no readiness for them, and the task blocks its
 *    thread for the disk, as in gevent.
 *  - close, dup2 and dup3 first wake the tasks of the thread's hub that
 *    wait on the fd being closed or replaced, with EBADF (as weft_io_close
 *    does; weft_io_forget).
 *  - Signal handlers: a handler installed with sigaction or signal runs as
 *    it would without the hooks, and its calls are libc's (an
 *    async-signal-safe write never parks anything).
 *  - fork, vfork, posix_spawn and exec are not hooked; in a child of fork
 *    the hooks act as in a plain thread until the child starts a hub of
 *    its own. exit() turns the hooks off for the rest of the process, so
 *    that atexit handlers run as in plain C.
 *  - Name resolution: getaddrinfo, getnameinfo and gethostbyname_r in a
 *    task run on a small pool of resolver threads while the task parks.
 *  - Two tasks may block reading (or writing) one fd, as two threads may.
 *
 * Not hooked, and how to tell (docs/hooks.md, "Limits"): raw syscall(2),
 * io_uring, calls inside libc itself (stdio's reads, glibc's own resolver
 * polls), a statically linked libc, and programs that bind their symbols
 * at link time (-Bsymbolic or a static copy of the library). Such a call
 * blocks its thread, and the hub's other tasks with it, as it would in
 * plain C; weft_hook_installed says whether the hooks are in front of
 * libc at all.
 *
 * Thread safety: every hook may be called from any thread. The functions
 * below act on the calling thread.
 */
#ifndef WEFT_HOOK_H
#define WEFT_HOOK_H

#include <stdbool.h>
#include <weft/hub.h>
#include <weft/io.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * weft_hook_installed — whether the hooks stand in front of libc's
 * functions in this process: true when a call to read(2) made by the
 * program or a library it loads reaches libweft-hook first. False when
 * another definition comes first, or when the environment variable
 * WEFT_HOOK was 0 at start (the hooks then pass every call to libc).
 * Does not block; from anywhere, a signal handler included.
 */
WEFT_API bool weft_hook_installed(void);

/*
 * weft_hook_enable — turn the hooks on (the default) or off for the calling
 * thread's tasks, now and for any hub this thread runs later. With them off,
 * the thread's tasks make libc's calls as they are and block the thread,
 * as a hub whose tasks need exact libc timing might want, or code that
 * must not switch inside a library (one holding a lock shared with other
 * threads across a read, say). Returns the previous setting. Does not
 * block; from a task or any thread.
 */
WEFT_API bool weft_hook_enable(bool on);

/*
 * weft_hook_enabled — whether a blocking call made here would park: in a
 * task, with the hooks installed and enabled for this thread, and not
 * inside a signal handler. Does not block; from anywhere.
 */
WEFT_API bool weft_hook_enabled(void);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_HOOK_H */
