/*
 * Paths and files. The root is escaped by three means, and each is shut
 * here: a ".." segment (refused after percent-decoding, so that an
 * encoded one is refused too), a NUL byte that would cut the path short
 * (refused, encoded or not), and a symbolic link that leads out (openat2's
 * RESOLVE_BENEATH fails such a path with EXDEV; the fallback refuses every
 * link).
 */
#define _GNU_SOURCE
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

long httpd_path_decode(char *p, size_t n) {
  if (n == 0 || p[0] != '/')
    return -1;
  /* Decode in place: the write index never passes the read index. */
  size_t w = 0;
  for (size_t r = 0; r < n; r++) {
    char c = p[r];
    if (c == '%') {
      if (r + 2 >= n)
        return -1;
      int hi = hexval(p[r + 1]), lo = hexval(p[r + 2]);
      if (hi < 0 || lo < 0)
        return -1;
      c = (char)(hi << 4 | lo);
      r += 2;
    }
    if (c == '\0')
      return -1;
    p[w++] = c;
  }
  /* Check every segment, then drop the leading slashes. */
  size_t start = 0;
  for (size_t i = 0; i <= w; i++) {
    if (i < w && p[i] != '/')
      continue;
    size_t len = i - start;
    if ((len == 1 && p[start] == '.') ||
        (len == 2 && p[start] == '.' && p[start + 1] == '.'))
      return -1;
    start = i + 1;
  }
  size_t lead = 0;
  while (lead < w && p[lead] == '/')
    lead++;
  memmove(p, p + lead, w - lead);
  p[w - lead] = '\0';
  return (long)(w - lead);
}

/* openat2 is tried until the kernel (or a seccomp filter) says it does
 * not know it; then the fallback is used for good. */
static atomic_int openat2_missing;

static int open_by_openat2(int dirfd, const char *rel) {
  struct open_how how = {
      .flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY,
      .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
  };
  long fd;
  do
    fd = syscall(SYS_openat2, dirfd, *rel ? rel : ".", &how, sizeof how);
  while (fd < 0 && errno == EINTR);
  if (fd < 0)
    return -errno;
  return (int)fd;
}

/* One component at a time, each opened with O_NOFOLLOW: a link anywhere
 * on the path is ELOOP. Directories are opened O_RDONLY | O_DIRECTORY
 * (not O_PATH, which with O_NOFOLLOW would open a link itself). */
static int open_by_components(int dirfd, const char *rel) {
  int cur = dirfd;
  const char *p = rel;
  char name[256];
  for (;;) {
    while (*p == '/')
      p++;
    const char *end = strchrnul(p, '/');
    size_t len = (size_t)(end - p);
    const char *rest = end;
    while (*rest == '/')
      rest++;
    bool last = *rest == '\0';
    int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW;
    if (!last)
      flags |= O_DIRECTORY;
    int fd;
    if (len == 0) {
      fd = openat(cur, ".", flags);
    } else if (len >= sizeof name) {
      fd = -1;
      errno = ENAMETOOLONG;
    } else {
      memcpy(name, p, len);
      name[len] = '\0';
      fd = openat(cur, name, flags);
    }
    int err = errno;
    if (cur != dirfd)
      close(cur);
    if (fd < 0)
      return -err;
    if (last)
      return fd;
    cur = fd;
    p = rest;
  }
}

int httpd_open_beneath(int dirfd, const char *rel, bool no_openat2) {
  if (!no_openat2 &&
      !atomic_load_explicit(&openat2_missing, memory_order_relaxed)) {
    int fd = open_by_openat2(dirfd, rel);
    if (fd != -ENOSYS && fd != -EPERM && fd != -E2BIG)
      return fd;
    /* EPERM is what seccomp filters give for a system call they do not
     * know; a real EPERM the fallback will report again. */
    atomic_store_explicit(&openat2_missing, 1, memory_order_relaxed);
  }
  return open_by_components(dirfd, rel);
}

static const struct {
  const char *ext;
  const char *type;
} types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"xml", "application/xml"},
    {"csv", "text/csv; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
};

const char *httpd_content_type(const char *name, size_t len) {
  size_t dot = len;
  while (dot > 0 && name[dot - 1] != '.' && name[dot - 1] != '/')
    dot--;
  if (dot > 0 && name[dot - 1] == '.') {
    const char *ext = name + dot;
    size_t elen = len - dot;
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
      if (strlen(types[i].ext) == elen &&
          strncasecmp(types[i].ext, ext, elen) == 0)
        return types[i].type;
  }
  return "application/octet-stream";
}
