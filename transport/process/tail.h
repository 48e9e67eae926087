/* Internal: the last few KiB of a plugin's stderr, for error messages. */
#ifndef GP_PROCESS_TAIL_H
#define GP_PROCESS_TAIL_H

#include <stddef.h>

#define GP__TAIL_SIZE 4096

typedef struct gp__tail {
    char buf[GP__TAIL_SIZE];
    size_t start; /* index of the oldest byte */
    size_t len;
    int dropped; /* older bytes were overwritten */
} gp__tail;

void gp__tail_add(gp__tail *t, const char *data, size_t n);

/* Copy the kept bytes into out (NUL-terminated, at most cap - 1 bytes, the
 * newest kept). If older bytes were dropped, the copy starts after the first
 * "\n" so it begins with a whole line. Trailing new lines are removed.
 * Returns the length. */
size_t gp__tail_copy(const gp__tail *t, char *out, size_t cap);

#endif
