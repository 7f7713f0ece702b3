/*
 * A directory for the tests' servers to serve, under /tmp, removed when the
 * test's process exits.
 */
#ifndef HTTPD_TEST_ROOT_H
#define HTTPD_TEST_ROOT_H

#include <stddef.h>

/* Makes the root once per process and returns its path:
 *   hello.txt ("hello file\n"), page.html, sub/index.html, empty/, fifo,
 *   etc -> /etc and passwd -> /etc/passwd (links that lead out),
 *   inside -> hello.txt and sub/up -> .. (links that stay in). */
const char *root_make(void);

/* Writes the file rel under the root. */
void root_file(const char *rel, const void *data, size_t len);

#endif
