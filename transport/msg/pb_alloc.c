/* nanopb's allocator: a per-thread budget and amortised growth
 * (pb_alloc.h says why). */
#include "transport/msg/pb_alloc.h"

#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>

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
    if (current == b)
        current = b->prev;
    return b->exceeded;
}

static size_t charge_of(void *p)
{
    return p ? malloc_usable_size(p) + GP__PB_ALLOC_OVERHEAD : 0;
}

/* Whether the budget has room to swap a block charged `old` for one of
 * `n` usable bytes. */
static bool fits(const gp__pb_budget *b, size_t old, size_t n)
{
    if (!b)
        return true;
    if (n > SIZE_MAX - GP__PB_ALLOC_OVERHEAD)
        return false;
    /* Saturating: a block from before the budget opened was never charged. */
    size_t after = b->used > old ? b->used - old : 0;
    return after <= b->limit && n + GP__PB_ALLOC_OVERHEAD <= b->limit - after;
}

static void recharge(gp__pb_budget *b, size_t old, size_t now)
{
    if (!b)
        return;
    b->used = (b->used > old ? b->used - old : 0) + now;
    if (b->used > b->peak)
        b->peak = b->used;
}

void *gp__pb_realloc(void *p, size_t n)
{
    gp__pb_budget *b = current;
    size_t usable = p ? malloc_usable_size(p) : 0;
    if (p && n <= usable)
        return p; /* nanopb never needs a block to shrink */
    size_t old = charge_of(p);
    size_t want = n;
    if (p && usable / 2 <= SIZE_MAX - usable && usable + usable / 2 > n &&
        fits(b, old, usable + usable / 2))
        want = usable + usable / 2;
    if (!fits(b, old, want)) {
        if (b)
            b->exceeded = true;
        return NULL;
    }
    void *q = realloc(p, want);
    if (!q && want > n)
        q = realloc(p, want = n);
    if (!q)
        return NULL;
    /* malloc may round up past the budget by a few bytes; charge what it
     * gave, so frees credit exactly what was charged. */
    recharge(b, old, charge_of(q));
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
        recharge(b, charge_of(p), 0);
    free(p);
}
