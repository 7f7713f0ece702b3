/* Built where Valgrind's header is missing: nobody to tell. */
#include "valgrind.h"

void weft__valgrind_stack_register(void *lo, void *hi) { (void)lo, (void)hi; }

void weft__valgrind_stack_fresh(void *lo, void *hi) { (void)lo, (void)hi; }

void weft__valgrind_make_defined(const void *lo, size_t n) {
  (void)lo, (void)n;
}
