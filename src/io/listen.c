/*
 * weft_io_listen: a listening socket from an address string, as Go's
 * net.Listen reads one. See include/weft/io.h.
 *
 * The whole address is checked before the first system call, so that bad
 * input opens nothing; after that, every path that fails closes what it
 * opened (and unlinks a Unix socket file it bound), so that a failure leaves
 * the process as it was.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <weft/io.h>

#include "listen.h"

enum kind {
  TCP_ANY,       /* ":port": every address, dual-stack where possible */
  TCP_V6,        /* "[v6]:port": an IPv6 literal, IPV6_V6ONLY */
  TCP_HOST,      /* "host:port": an IPv4 literal or a name to resolve */
  UNIX_PATH,     /* "unix:PATH" */
  UNIX_ABSTRACT, /* "unix:@NAME" */
};

/* An address as parsed: for TCP the host (NUL-terminated, empty for
 * TCP_ANY) and port; for Unix the sockaddr ready to bind. */
struct target {
  enum kind kind;
  char host[NI_MAXHOST];
  uint16_t port;
  struct sockaddr_un un;
  socklen_t un_len;
};

/* A port: decimal digits only, 0 .. 65535, nothing before or after. */
static int parse_port(const char *s, uint16_t *out) {
  if (!*s)
    return -EINVAL;
  unsigned v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9')
      return -EINVAL;
    v = v * 10 + (unsigned)(*s - '0');
    if (v > 65535)
      return -EINVAL; /* checked each digit, so v never overflows */
  }
  *out = (uint16_t)v;
  return 0;
}

static int parse_unix(const char *path, struct target *t) {
  size_t cap = sizeof t->un.sun_path;
  memset(&t->un, 0, sizeof t->un);
  t->un.sun_family = AF_UNIX;
  if (!*path)
    return -EINVAL;
  if (path[0] == '@') {
    /* Abstract: a NUL, then the name; the length says where it ends. */
    const char *name = path + 1;
    size_t n = strlen(name);
    if (n == 0)
      return -EINVAL;
    if (n > cap - 1)
      return -ENAMETOOLONG;
    memcpy(t->un.sun_path + 1, name, n);
    t->kind = UNIX_ABSTRACT;
    t->un_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    return 0;
  }
  size_t n = strlen(path);
  if (n >= cap)
    return -ENAMETOOLONG; /* the path and its NUL must fit */
  memcpy(t->un.sun_path, path, n + 1);
  t->kind = UNIX_PATH;
  t->un_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  return 0;
}

/* Copies the n bytes at s into host as a string; a host too long for any
 * name or literal cannot be resolved. */
static int copy_host(struct target *t, const char *s, size_t n) {
  if (n >= sizeof t->host)
    return -EADDRNOTAVAIL;
  memcpy(t->host, s, n);
  t->host[n] = '\0';
  return 0;
}

static int parse(const char *address, struct target *t) {
  if (strncmp(address, "unix:", 5) == 0)
    return parse_unix(address + 5, t);
  const char *port;
  int rc;
  if (address[0] == '[') {
    const char *end = strchr(address, ']');
    if (!end || end[1] != ':' || end == address + 1)
      return -EINVAL;
    t->kind = TCP_V6;
    /* No IPv6 literal, even with a zone, is that long: malformed. */
    rc = copy_host(t, address + 1, (size_t)(end - address - 1)) < 0 ? -EINVAL
                                                                    : 0;
    port = end + 2;
  } else {
    const char *colon = strrchr(address, ':');
    if (!colon)
      return -EINVAL;
    size_t n = (size_t)(colon - address);
    /* A colon or a bracket left in the host is an IPv6 literal without
     * its brackets, or a typo: "::1:80" could be read two ways. */
    if (memchr(address, ':', n) || memchr(address, '[', n) ||
        memchr(address, ']', n))
      return -EINVAL;
    t->kind = n == 0 ? TCP_ANY : TCP_HOST;
    rc = copy_host(t, address, n);
    port = colon + 1;
  }
  int prc = parse_port(port, &t->port);
  return prc < 0 ? prc : rc; /* a bad port is bad input, first */
}

static int set_int_opt(int fd, int level, int name, int value) {
  return setsockopt(fd, level, name, &value, sizeof value);
}

/* Opens, configures, binds and listens one TCP socket. v6only: the value
 * for IPV6_V6ONLY on an AF_INET6 socket. Returns the fd, or the negative
 * errno of the call that failed, with nothing left open. */
static int open_tcp(const struct sockaddr *sa, socklen_t len, bool v6only,
                    int backlog, unsigned flags) {
  int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  IPPROTO_TCP);
  if (fd < 0)
    return -errno;
  if (set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0 ||
      ((flags & WEFT_LISTEN_REUSEPORT) &&
       set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1) < 0) ||
      (sa->sa_family == AF_INET6 &&
       set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, v6only) < 0) ||
      bind(fd, sa, len) < 0 || listen(fd, backlog) < 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

/* ":port": [::] with IPV6_V6ONLY off takes IPv4 too; a host whose kernel
 * has no IPv6 at all gets 0.0.0.0. */
static int listen_any(const struct target *t, int backlog, unsigned flags) {
  struct sockaddr_in6 s6 = {.sin6_family = AF_INET6,
                            .sin6_port = htons(t->port),
                            .sin6_addr = IN6ADDR_ANY_INIT};
  int fd = open_tcp((struct sockaddr *)&s6, sizeof s6, false, backlog, flags);
  if (fd != -EAFNOSUPPORT)
    return fd;
  struct sockaddr_in s4 = {.sin_family = AF_INET,
                           .sin_port = htons(t->port),
                           .sin_addr.s_addr = htonl(INADDR_ANY)};
  return open_tcp((struct sockaddr *)&s4, sizeof s4, false, backlog, flags);
}

/* getaddrinfo's failure as an errno: a name that does not resolve (for
 * whatever reason the resolver gives) is an address this host cannot
 * listen on; a bracketed literal that does not parse is malformed. */
static int gai_errno(int rc, bool literal) {
  if (rc == EAI_MEMORY)
    return -ENOMEM;
  if (rc == EAI_SYSTEM &&
      (errno == ENOMEM || errno == EMFILE || errno == ENFILE))
    return -errno;
  return literal ? -EINVAL : -EADDRNOTAVAIL;
}

/* "host:port" and "[v6]:port": the first address the host gives that
 * opens, binds and listens. An IPv4 literal is taken as it is; anything
 * else goes through getaddrinfo (numerically only, for a bracketed
 * literal, which may carry a zone: "[fe80::1%eth0]"). */
static int listen_host(const struct target *t, int backlog, unsigned flags) {
  struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(t->port)};
  if (t->kind == TCP_HOST && inet_pton(AF_INET, t->host, &s4.sin_addr) == 1)
    return open_tcp((struct sockaddr *)&s4, sizeof s4, false, backlog, flags);
  bool literal = t->kind == TCP_V6;
  struct addrinfo hints = {
      .ai_family = literal ? AF_INET6 : AF_UNSPEC,
      .ai_socktype = SOCK_STREAM,
      .ai_protocol = IPPROTO_TCP,
      .ai_flags = AI_PASSIVE | AI_NUMERICSERV | (literal ? AI_NUMERICHOST : 0),
  };
  char port[8];
  snprintf(port, sizeof port, "%u", (unsigned)t->port);
  struct addrinfo *list = NULL;
  int rc = getaddrinfo(t->host, port, &hints, &list);
  if (rc != 0)
    return gai_errno(rc, literal);
  /* The first error is the one to report: the later addresses are
   * fallbacks the caller may not know of. */
  int first_err = 0;
  int fd = -EADDRNOTAVAIL;
  for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
      continue;
    fd = open_tcp(ai->ai_addr, ai->ai_addrlen, true, backlog, flags);
    if (fd >= 0)
      break;
    if (!first_err)
      first_err = fd;
  }
  freeaddrinfo(list);
  return fd >= 0 || !first_err ? fd : first_err;
}

/* What is at a Unix path that bind(2) found taken. */
enum occupant { GONE, STALE, LIVE };

/* A socket file nobody listens on refuses a connection (ECONNREFUSED):
 * a leftover of a process that ended without unlinking it. Anything else
 * at the path — a live listener (even one whose backlog is full: EAGAIN),
 * a socket of another type (EPROTOTYPE), a file that is no socket — is
 * left alone. The probe is non-blocking, so a full backlog cannot make it
 * wait. Returns an occupant, or a negative errno (no socket for the
 * probe). */
static int occupant(const struct target *t) {
  struct stat st;
  if (lstat(t->un.sun_path, &st) < 0)
    return errno == ENOENT ? GONE : -errno;
  if (!S_ISSOCK(st.st_mode))
    return LIVE;
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (probe < 0)
    return -errno;
  int rc = connect(probe, (const struct sockaddr *)&t->un, t->un_len);
  int err = rc < 0 ? errno : 0;
  close(probe);
  if (err == ECONNREFUSED)
    return STALE;
  return err == ENOENT ? GONE : LIVE;
}

/* bind(2) of a Unix socket, replacing a stale socket file once. Returns 0
 * or a negative errno. */
static int bind_unix(int fd, const struct target *t) {
  const struct sockaddr *sa = (const struct sockaddr *)&t->un;
  if (bind(fd, sa, t->un_len) == 0)
    return 0;
  if (errno != EADDRINUSE || t->kind != UNIX_PATH)
    return -errno;
  int who = occupant(t);
  if (who < 0)
    return who;
  if (who == LIVE)
    return -EADDRINUSE;
  if (who == STALE && unlink(t->un.sun_path) < 0 && errno != ENOENT)
    return -errno;
  /* Once only: a file that came back meanwhile belongs to someone who
   * just bound it. */
  return bind(fd, sa, t->un_len) == 0 ? 0 : -errno;
}

static int listen_unix(const struct target *t, int backlog) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int rc = bind_unix(fd, t);
  if (rc == 0 && listen(fd, backlog) < 0) {
    rc = -errno;
    if (t->kind == UNIX_PATH)
      unlink(t->un.sun_path); /* the file this call made */
  }
  if (rc < 0) {
    close(fd);
    return rc;
  }
  return fd;
}

int weft_io_listen(const char *address, int backlog, unsigned flags) {
  if (!address || (flags & ~WEFT_LISTEN_REUSEPORT) || backlog < 0)
    return -EINVAL;
  struct target t;
  int rc = parse(address, &t);
  if (rc < 0)
    return rc;
  if (backlog == 0)
    backlog = SOMAXCONN;
  switch (t.kind) {
  case TCP_ANY:
    return listen_any(&t, backlog, flags);
  case TCP_V6:
  case TCP_HOST:
    return listen_host(&t, backlog, flags);
  case UNIX_PATH:
  case UNIX_ABSTRACT:
    break;
  }
  return listen_unix(&t, backlog);
}

int weft__listen_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
    return -errno;
  int type = 0;
  socklen_t tlen = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0)
    return -errno;
  if (type != SOCK_STREAM)
    return -EINVAL;
  if (ss.ss_family == AF_INET)
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return -EINVAL;
}
