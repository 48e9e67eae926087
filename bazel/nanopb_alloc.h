/* Internal: the allocator of nanopb's runtime, and the per-thread budget
 * that bounds what one decode may make us allocate (issue 13). This file
 * is bazel/nanopb_alloc.h in goplugin-c's tree and gp_pb_alloc.h in the
 * @nanopb repository (bazel/deps.bzl links it there, so it builds the
 * same from another workspace); bazel/nanopb.BUILD forces it into the
 * runtime's files, so their pb_realloc and pb_free are the ones below.
 * Include it as <gp_pb_alloc.h>.
 *
 * Why: with PB_ENABLE_MALLOC every repeated element is an allocation of
 * its own, so 2 bytes on the wire ("\x12\x00", an empty string) cost a
 * pointer and a 1-byte string in a 32-byte chunk: 64 MiB of them took
 * 1.3 GiB resident before this. gp__msg_decode (transport/msg) opens a
 * budget of gp__pb_decode_budget(len) around pb_decode; past it an
 * allocation fails, so the decode fails, and gp__pb_budget_end says so
 * for the error.
 *
 * Also why: nanopb grows a repeated field one element per realloc. glibc
 * often extends in place, but an allocator that copies (ASan's, or a
 * fragmented heap) makes that quadratic; gp__pb_realloc grows a block by
 * at least half again, checked with malloc_usable_size, so copies are
 * amortised O(1) per element.
 *
 * Also why: a block of GP__PB_PREFAULT_MIN or more is about to be written
 * whole (a value read off the wire), often into heap pages glibc handed
 * back to the kernel after the last large free; gp__pb_realloc maps its
 * pages in with one madvise(MADV_POPULATE_WRITE) instead of a fault per
 * page (gp__pb_prefault; docs/grpc.md, "Large messages and glibc's
 * heap").
 *
 * Blocks are plain malloc blocks: free() and gp__pb_free() are
 * interchangeable, and the message code may fill pointer fields with
 * malloc'ed memory that pb_release later frees. Thread safety: the budget
 * is per thread; all functions may be called from any thread. */
#ifndef GP_PB_ALLOC_H
#define GP_PB_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

/* The budget charges a block what glibc's malloc takes for it (usable
 * size + 8 of header, rounded up to 16, at least 32 bytes), also under
 * ASan, which reports exact sizes, so the limit means the same in every
 * build. An empty string is a 32-byte chunk. */

/* gp__pb_decode_budget: GP__PB_BUDGET_FACTOR x the encoded size plus
 * GP__PB_BUDGET_FLOOR. 8x fits every field kind at its densest except tiny
 * repeated strings, bytes and submessages (a packed int64 of 1-byte
 * varints is exactly 8x; a repeated string of 8 bytes or more is under
 * 5x, an empty one 22x), and the floor lets through any message of
 * strings under ~700 KiB whatever they hold (70000 empty strings cost
 * 3 MiB). Repeated submessages cost their struct size per element: a
 * 2-byte empty one of a 200-byte struct is 100x, so a message of only
 * those passes up to ~160 KiB. */
/* Blocks (or the grown part of one) this big have their pages mapped in at
 * once (above). */
#define GP__PB_PREFAULT_MIN ((size_t)256 << 10)

#define GP__PB_BUDGET_FACTOR 8
#define GP__PB_BUDGET_FLOOR ((size_t)16 << 20)

typedef struct gp__pb_budget {
    size_t limit;               /* bytes the blocks of this decode may hold */
    size_t used;                /* what the live blocks cost */
    size_t peak;                /* the most `used` was */
    bool exceeded;              /* an allocation was refused */
    struct gp__pb_budget *prev; /* the budget this one interrupted */
} gp__pb_budget;

/* The budget for decoding a message of `encoded_len` bytes (saturates). */
size_t gp__pb_decode_budget(size_t encoded_len);

/* Makes *b (caller's storage, live until the end call) this thread's
 * budget, charging every allocation and release of the functions below
 * until gp__pb_budget_end(b). Nests: the outer budget resumes after, not
 * charged with the inner one's blocks. */
void gp__pb_budget_begin(gp__pb_budget *b, size_t limit);

/* Ends b (the innermost budget of this thread); true when an allocation
 * was refused under it. */
bool gp__pb_budget_end(gp__pb_budget *b);

/* realloc(p, n), charged to this thread's budget if one is open: NULL
 * (p untouched) when it would go past the limit. A growing block gets
 * room for half again its old size, or what is left of the budget. */
void *gp__pb_realloc(void *p, size_t n);

/* malloc(n), charged the same way. */
void *gp__pb_malloc(size_t n);

/* free(p), credited back to an open budget. */
void gp__pb_free(void *p);

/* Maps in every page [p, p+n) touches, at once, when n is
 * GP__PB_PREFAULT_MIN or more: for a buffer about to be written whole
 * (gp__pb_realloc does it for its blocks; the gRPC wire for the slice it
 * encodes a large message into). No-op before Linux 5.14. */
void gp__pb_prefault(void *p, size_t n);

/* nanopb's hooks (pb.h keeps them when defined first). */
#undef pb_realloc
#undef pb_free
#define pb_realloc(ptr, size) gp__pb_realloc((ptr), (size))
#define pb_free(ptr) gp__pb_free(ptr)

#endif
