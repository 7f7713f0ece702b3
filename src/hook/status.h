/*
 * Flipped fds: blocking listening sockets the hooks made non-blocking for
 * accept, with the program's own O_NONBLOCK kept aside. See status.c.
 */
#ifndef WEFT_HOOK_STATUS_H
#define WEFT_HOOK_STATUS_H

#include <stdbool.h>

/* If fd is flipped, stores the program's O_NONBLOCK in *user_nonblocking
 * and returns 1; else returns 0. */
int weft__hook_flipped_view(int fd, bool *user_nonblocking);

/* If fd is flipped, records the program's new O_NONBLOCK and returns 1;
 * else returns 0 (the caller sets the real flag). */
int weft__hook_flipped_set_view(int fd, bool user_nonblocking);

/* Sets O_NONBLOCK on fd for real and records that the program sees it
 * blocking. Returns 0 or a negative errno (nothing changed). */
int weft__hook_flip(int fd);

/* Forgets fd's record (fd closed or replaced). */
void weft__hook_flipped_drop(int fd);

/* Makes `to`'s record a copy of `from`'s (a dup of it), or drops it. */
void weft__hook_flipped_copy(int from, int to);

#endif
