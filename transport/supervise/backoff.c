/* Restart backoff: pure arithmetic on the times the caller passes in. */
#include <goplugin/backoff.h>

#include <string.h>

#include "transport/base/errf.h"

gp_backoff_config gp_backoff_defaults(void)
{
    return (gp_backoff_config){
        .immediate = 3,
        .first_delay_ms = 1000,
        .max_delay_ms = 60000,
        .healthy_after_ms = 10000,
    };
}

gp_err gp_backoff_init(gp_backoff *b, const gp_backoff_config *cfg, gp_status *st)
{
    gp__status_clear(st);
    memset(b, 0, sizeof *b);
    b->cfg = gp_backoff_defaults();
    if (!cfg)
        return GP_OK;
    if (cfg->first_delay_ms < 0 || cfg->max_delay_ms < 0 || cfg->healthy_after_ms < 0 ||
        cfg->first_delay_ms > cfg->max_delay_ms)
        return gp__status_setf(st, GP_EINVAL,
                               "backoff: expected non-negative delays and first_delay_ms <= "
                               "max_delay_ms, got first %lld, max %lld, healthy after %lld",
                               (long long)cfg->first_delay_ms, (long long)cfg->max_delay_ms,
                               (long long)cfg->healthy_after_ms);
    b->cfg = *cfg;
    return GP_OK;
}

void gp_backoff_started(gp_backoff *b, int64_t now_ms)
{
    b->running = true;
    b->started_ms = now_ms;
}

bool gp_backoff_healthy(const gp_backoff *b, int64_t now_ms)
{
    return b->running && now_ms - b->started_ms >= b->cfg.healthy_after_ms;
}

int64_t gp_backoff_exited(gp_backoff *b, int64_t now_ms)
{
    if (gp_backoff_healthy(b, now_ms))
        b->failures = 0;
    b->running = false;
    if (b->failures < 0xffffffffu)
        b->failures++;
    if (b->failures <= b->cfg.immediate)
        return 0;
    /* Double from first_delay_ms; stop doubling at the cap so the shift
     * never overflows however long the streak. */
    int64_t d = b->cfg.first_delay_ms;
    for (unsigned i = b->cfg.immediate + 1; i < b->failures && d < b->cfg.max_delay_ms; i++)
        d = d > b->cfg.max_delay_ms / 2 ? b->cfg.max_delay_ms : d * 2;
    return d < b->cfg.max_delay_ms ? d : b->cfg.max_delay_ms;
}

unsigned gp_backoff_failures(const gp_backoff *b)
{
    return b->failures;
}

void gp_backoff_reset(gp_backoff *b)
{
    b->failures = 0;
    b->running = false;
    b->started_ms = 0;
}
