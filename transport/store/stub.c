/* Placeholder so the target builds while the store is written. */
#include <goplugin/store.h>

#include "transport/base/errf.h"

gp_err gp_store_open(const gp_store_open_opts *o, gp_store **out, gp_status *st)
{
    (void)o;
    *out = NULL;
    return gp__status_setf(st, GP_EUNSUPPORTED, "store: not implemented yet");
}
