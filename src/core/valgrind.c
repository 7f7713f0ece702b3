#include "valgrind.h"

#include <valgrind/valgrind.h>

void weft__valgrind_stack_register(void *lo, void *hi) {
  (void)VALGRIND_STACK_REGISTER(lo, hi);
}
