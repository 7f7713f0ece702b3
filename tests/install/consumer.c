/* Built against an installed weft, by pkg-config and by find_package. */
#include <stdio.h>
#include <weft.h>

static void *count(void *arg) {
  for (long i = 0; i < (long)arg; i++)
    weft_gen_yield((void *)i, NULL);
  return NULL;
}

int main(void) {
  weft_gen *g;
  if (weft_gen_new(&g, count, (void *)3L, NULL) != 0)
    return 1;
  void *v;
  long sum = 0;
  while (weft_gen_next(g, &v) == WEFT_GEN_YIELDED)
    sum += (long)v;
  weft_gen_free(g);
  printf("weft %s: sum %ld\n", weft_version(), sum);
  return sum == 3 ? 0 : 1;
}
