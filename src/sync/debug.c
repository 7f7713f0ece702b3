/*
 * The sync layer's debugging modes. See debug.h.
 */
#define _GNU_SOURCE
#include "debug.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <weft/sync.h>

#include "../core/coro.h"
#include "watchdog.h"

int weft__sync_debug = -1;

static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static bool set(const char *v) { return v && *v && strcmp(v, "0") != 0; }

static void read_env(void) {
  int modes = set(getenv("WEFT_LOCKCHECK")) ? WEFT__DEBUG_LOCKCHECK : 0;
  const char *v = getenv("WEFT_WATCHDOG");
  if (set(v))
    modes |= WEFT__DEBUG_HOLDERS;
  __atomic_store_n(&weft__sync_debug, modes, __ATOMIC_RELAXED);
  if (!set(v))
    return;
  /* "1" (or anything not a number above 1): a scan a second; else the
   * number is the milliseconds between scans. */
  long ms = strtol(v, NULL, 10);
  if (ms <= 1)
    ms = 1000;
  if (weft__watchdog_start(WEFT_MS(ms), WEFT__WATCHDOG_REPORT) < 0) {
    static const char failed[] =
        "weft: WEFT_WATCHDOG: the watchdog thread could not start\n";
    weft__say(failed, sizeof failed - 1);
  }
}

/* The function of the ELF file at path (loaded at base) that holds site,
 * by its symbol table (.symtab: static functions too; else .dynsym), into
 * name and *off; false when the file or no symbol says. Reads the file by
 * mmap: no malloc, no stdio. */
static bool symtab_name(const char *path, const void *base, const void *site,
                        char *name, size_t cap, unsigned long *off) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  struct stat st;
  void *map = MAP_FAILED;
  if (fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof(ElfW(Ehdr)))
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED)
    return false;
  size_t size = (size_t)st.st_size;
  const char *file = map;
  const ElfW(Ehdr) *eh = map;
  bool found = false;
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
      eh->e_ident[EI_CLASS] !=
          (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32) ||
      eh->e_shoff == 0 || eh->e_shentsize != sizeof(ElfW(Shdr)) ||
      eh->e_shoff + (size_t)eh->e_shnum * sizeof(ElfW(Shdr)) > size)
    goto out;
  const ElfW(Shdr) *sh = (const ElfW(Shdr) *)(file + eh->e_shoff);
  /* A shared object's (and a PIE's) symbols are offsets from its base. */
  uintptr_t at = (uintptr_t)site - (eh->e_type == ET_DYN ? (uintptr_t)base : 0);
  for (int pass = 0; pass < 2 && !found; pass++) {
    unsigned want = pass == 0 ? SHT_SYMTAB : SHT_DYNSYM;
    for (int i = 0; i < eh->e_shnum && !found; i++) {
      if (sh[i].sh_type != want || sh[i].sh_link >= eh->e_shnum ||
          sh[i].sh_offset + sh[i].sh_size > size ||
          sh[i].sh_entsize != sizeof(ElfW(Sym)))
        continue;
      const ElfW(Shdr) *strs = &sh[sh[i].sh_link];
      if (strs->sh_offset + strs->sh_size > size)
        continue;
      const ElfW(Sym) *sym = (const ElfW(Sym) *)(file + sh[i].sh_offset);
      size_t n = sh[i].sh_size / sizeof *sym;
      for (size_t k = 0; k < n; k++) {
        if (ELF64_ST_TYPE(sym[k].st_info) != STT_FUNC ||
            sym[k].st_shndx == SHN_UNDEF || sym[k].st_size == 0 ||
            at < sym[k].st_value || at >= sym[k].st_value + sym[k].st_size ||
            sym[k].st_name >= strs->sh_size)
          continue;
        const char *s = file + strs->sh_offset + sym[k].st_name;
        size_t len = strnlen(s, strs->sh_size - sym[k].st_name);
        if (len == 0 || len >= cap)
          continue;
        memcpy(name, s, len);
        name[len] = '\0';
        *off = (unsigned long)(at - sym[k].st_value);
        found = true;
        break;
      }
    }
  }
out:
  munmap(map, size);
  return found;
}

void weft__site_name(const void *site, char *buf, size_t cap) {
  Dl_info info;
  if (!site || !dladdr(site, &info)) {
    snprintf(buf, cap, "%p", site);
  } else if (info.dli_sname) {
    snprintf(
        buf, cap, "%s+0x%lx", info.dli_sname,
        (unsigned long)((const char *)site - (const char *)info.dli_saddr));
  } else {
    const char *file = info.dli_fname ? strrchr(info.dli_fname, '/') : NULL;
    int n = snprintf(
        buf, cap, "%s+0x%lx",
        file ? file + 1 : (info.dli_fname ? info.dli_fname : "?"),
        (unsigned long)((const char *)site - (const char *)info.dli_fbase));
    /* Not exported (a static function, or any in a program linked without
     * -rdynamic): the file's own symbol table may still name it. The main
     * program's name is not a path to open: /proc/self/exe is the file. */
    char name[96];
    unsigned long off;
    const char *path = info.dli_fname && info.dli_fname[0] == '/'
                           ? info.dli_fname
                           : "/proc/self/exe";
    if (n > 0 && (size_t)n < cap &&
        symtab_name(path, info.dli_fbase, site, name, sizeof name, &off))
      snprintf(buf + n, cap - (size_t)n, " (%s+0x%lx)", name, off);
  }
}

int weft__sync_debug_read_env(void) {
  pthread_once(&env_once, read_env);
  return __atomic_load_n(&weft__sync_debug, __ATOMIC_RELAXED);
}

void weft__sync_debug_enable(int bits) {
  weft__sync_debug_read_env();
  __atomic_fetch_or(&weft__sync_debug, bits, __ATOMIC_RELAXED);
}
