/*
 * What the io layer tells other layers about the listening sockets
 * weft_io_listen opens (the cluster reports their ports).
 */
#ifndef WEFT_IO_LISTEN_H
#define WEFT_IO_LISTEN_H

/* The TCP port the socket fd is bound to (0 .. 65535; 0 when it is not
 * bound), or -EINVAL when fd is not a TCP socket (a Unix-domain or UDP
 * one), or getsockname's negative errno (-EBADF, -ENOTSOCK). Changes
 * nothing; does not block. */
int weft__listen_port(int fd);

#endif
