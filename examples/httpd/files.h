/*
 * Files under the root: turning a request's path into a file that cannot
 * lie outside the root, and naming its type.
 */
#ifndef HTTPD_FILES_H
#define HTTPD_FILES_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Percent-decodes the URL path p (n bytes, starting with '/') in place and
 * makes it a path relative to the root: the leading slashes go, and what
 * is left may be "" (the root itself). Returns its length, or -1 when the
 * path must be refused (400): a malformed escape, a NUL byte (encoded or
 * not), a "." or ".." segment (checked after decoding, so "%2e%2e" is one
 * too), or no leading '/'. The result is NUL-terminated: p needs n + 1
 * bytes.
 */
long httpd_path_decode(char *p, size_t n);

/*
 * Opens the relative path rel (from httpd_path_decode) beneath the
 * directory dirfd for reading, refusing to leave it: with openat2(2)'s
 * RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS where the kernel has it (a
 * symbolic link that stays inside is followed), else one component at a
 * time with O_NOFOLLOW (every symbolic link is refused), or always so with
 * no_openat2. Never blocks on a FIFO (O_NONBLOCK). Returns the fd, or a
 * negative errno: -ENOENT, -ENOTDIR, -EACCES, -ELOOP (a link refused),
 * -EXDEV (a path that would leave dirfd), ...
 */
int httpd_open_beneath(int dirfd, const char *rel, bool no_openat2);

/* The Content-Type for a file name, by its extension; never NULL. */
const char *httpd_content_type(const char *name, size_t len);

#endif
