#include "valgrind.h"

#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>

void weft__valgrind_stack_register(void *lo, void *hi) {
  (void)VALGRIND_STACK_REGISTER(lo, hi);
}

void weft__valgrind_stack_fresh(void *lo, void *hi) {
  (void)VALGRIND_MAKE_MEM_UNDEFINED(lo, (char *)hi - (char *)lo);
}

void weft__valgrind_make_defined(const void *lo, size_t n) {
  (void)VALGRIND_MAKE_MEM_DEFINED(lo, n);
}
