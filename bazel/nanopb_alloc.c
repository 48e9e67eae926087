/* nanopb's allocator: a per-thread budget and amortised growth
 * (nanopb_alloc.h, @nanopb//:gp_pb_alloc.h, says why). */
#include "gp_pb_alloc.h"

#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static _Thread_local gp__pb_budget *current;

size_t gp__pb_decode_budget(size_t encoded_len)
{
    if (encoded_len > (SIZE_MAX - GP__PB_BUDGET_FLOOR) / GP__PB_BUDGET_FACTOR)
        return SIZE_MAX;
    return encoded_len * GP__PB_BUDGET_FACTOR + GP__PB_BUDGET_FLOOR;
}

void gp__pb_budget_begin(gp__pb_budget *b, size_t limit)
{
    *b = (gp__pb_budget){.limit = limit, .prev = current};
    current = b;
}

bool gp__pb_budget_end(gp__pb_budget *b)
{
    current = b->prev;
    return b->exceeded;
}

/* What a block of `usable` bytes costs: glibc's chunk for it (usable + 8
 * rounded up to 16, at least 32), whatever the allocator says: ASan
 * reports exact sizes, and the limit should mean the same in every build. */
static size_t cost(size_t usable)
{
    if (usable > SIZE_MAX / 2)
        return SIZE_MAX / 2;
    size_t c = (usable + 8 + 15) & ~(size_t)15;
    return c < 32 ? 32 : c;
}

static size_t cost_of(void *p)
{
    return p ? cost(malloc_usable_size(p)) : 0;
}

static void recharge(gp__pb_budget *b, size_t old, size_t now)
{
    if (!b)
        return;
    b->used = (b->used > old ? b->used - old : 0) + now;
    if (b->used > b->peak)
        b->peak = b->used;
}

/* A block this big is about to be written whole (a bytes or string value
 * read off the wire). glibc serves it from the top of its heap, which it
 * trims back after every large free, so a 1 MiB reply faulted its pages
 * in one trap at a time; a fault costs 11-13 us on the VM measured here
 * (bench/vmcost). One madvise maps them all for about a tenth of that
 * (0.1-0.4 ms for 255 pages, strace -T). */
static atomic_int prefault_off; /* the kernel lacks MADV_POPULATE_WRITE */

void gp__pb_prefault(void *p, size_t n)
{
#ifdef MADV_POPULATE_WRITE
    if (n < GP__PB_PREFAULT_MIN || atomic_load_explicit(&prefault_off, memory_order_relaxed))
        return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    /* The pages at either end hold other blocks' bytes too: populating
     * maps them, it writes nothing. */
    uintptr_t a = (uintptr_t)p & ~(page - 1);
    uintptr_t b = ((uintptr_t)p + n + page - 1) & ~(page - 1);
    int saved = errno; /* callers of malloc do not expect it to move */
    if (b > a && madvise((void *)a, b - a, MADV_POPULATE_WRITE) != 0 && errno == EINVAL)
        atomic_store_explicit(&prefault_off, 1, memory_order_relaxed); /* before Linux 5.14 */
    errno = saved;
#else
    (void)p;
    (void)n;
#endif
}

void *gp__pb_realloc(void *p, size_t n)
{
    gp__pb_budget *b = current;
    size_t usable = p ? malloc_usable_size(p) : 0;
    if (p && n <= usable)
        return p; /* nanopb never needs a block to shrink */
    size_t old = p ? cost(usable) : 0;
    size_t want = n;
    if (p && usable <= SIZE_MAX / 3 && usable + usable / 2 > n)
        want = usable + usable / 2;
    if (b) {
        /* Saturating: a block from before the budget opened was never
         * charged. */
        size_t after = b->used > old ? b->used - old : 0;
        size_t room = b->limit > after ? b->limit - after : 0;
        if (n > SIZE_MAX / 2 || cost(n) > room) {
            b->exceeded = true;
            return NULL;
        }
        /* Near the limit, grow to what is left rather than by the exact
         * request: an allocator that copies on realloc would otherwise
         * copy the whole array once per element from here on. */
        if (cost(want) > room)
            want = (room & ~(size_t)15) - 8; /* >= n, as cost(n) <= room */
        if (want < n)
            want = n;
    }
    void *q = realloc(p, want);
    if (!q && want > n)
        q = realloc(p, want = n);
    if (!q)
        return NULL;
    /* malloc may round past the request (whole pages for big blocks):
     * charge what it gave, which is what a free credits back. */
    recharge(b, old, cost_of(q));
    size_t fresh = p ? usable : 0; /* moved or not, the old part is resident */
    if (n > fresh)
        gp__pb_prefault((char *)q + fresh, n - fresh);
    return q;
}

void *gp__pb_malloc(size_t n)
{
    return gp__pb_realloc(NULL, n ? n : 1);
}

void gp__pb_free(void *p)
{
    gp__pb_budget *b = current;
    if (p && b)
        recharge(b, cost_of(p), 0);
    free(p);
}
