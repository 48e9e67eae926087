/* gob value trees: freeing and field lookup. See gob.h. */
#include "transport/wire/netrpc/gob/gob.h"

#include <stdlib.h>
#include <string.h>

void gp__gob_value_clear(gp__gob_value *v)
{
    if (!v || !v->type)
        return;
    switch (v->type->kind) {
    case GP_GOB_BYTES:
    case GP_GOB_STRING:
    case GP_GOB_OPAQUE:
        free(v->u.bytes.data);
        break;
    case GP_GOB_STRUCT:
    case GP_GOB_SLICE:
    case GP_GOB_ARRAY:
    case GP_GOB_MAP: {
        size_t n = v->u.list.len * (v->type->kind == GP_GOB_MAP ? 2 : 1);
        if (v->u.list.items)
            for (size_t i = 0; i < n; i++)
                gp__gob_value_clear(&v->u.list.items[i]);
        free(v->u.list.items);
        break;
    }
    case GP_GOB_INTERFACE:
        free(v->u.iface.name);
        gp__gob_value_free(v->u.iface.value);
        break;
    default:
        break;
    }
    memset(&v->u, 0, sizeof v->u);
}

void gp__gob_value_free(gp__gob_value *v)
{
    if (!v)
        return;
    gp__gob_value_clear(v);
    free(v);
}

const gp__gob_value *gp__gob_field(const gp__gob_value *v, const char *name)
{
    if (!v || !v->type || v->type->kind != GP_GOB_STRUCT || !v->u.list.items)
        return NULL;
    for (size_t i = 0; i < v->type->nfields && i < v->u.list.len; i++)
        if (v->type->fields[i].name && strcmp(v->type->fields[i].name, name) == 0)
            return &v->u.list.items[i];
    return NULL;
}

static gp_err copy_into(gp__gob_value *dst, const gp__gob_value *src, int depth)
{
    *dst = *src;
    if (!src->type)
        return GP_OK;
    if (depth > 256) {
        memset(&dst->u, 0, sizeof dst->u); /* never share src's memory */
        return GP_EINVAL;
    }
    switch (src->type->kind) {
    case GP_GOB_BYTES:
    case GP_GOB_STRING:
    case GP_GOB_OPAQUE:
        dst->u.bytes.data = malloc(src->u.bytes.len + 1);
        if (!dst->u.bytes.data)
            return GP_ENOMEM;
        if (src->u.bytes.len)
            memcpy(dst->u.bytes.data, src->u.bytes.data, src->u.bytes.len);
        dst->u.bytes.data[src->u.bytes.len] = '\0';
        return GP_OK;
    case GP_GOB_STRUCT:
    case GP_GOB_SLICE:
    case GP_GOB_ARRAY:
    case GP_GOB_MAP: {
        size_t n = src->u.list.len * (src->type->kind == GP_GOB_MAP ? 2 : 1);
        dst->u.list.items = NULL;
        if (!src->u.list.items || n == 0)
            return GP_OK;
        dst->u.list.items = calloc(n, sizeof *dst->u.list.items);
        if (!dst->u.list.items)
            return GP_ENOMEM;
        for (size_t i = 0; i < n; i++)
            if (copy_into(&dst->u.list.items[i], &src->u.list.items[i], depth + 1) != GP_OK)
                return GP_ENOMEM;
        return GP_OK;
    }
    case GP_GOB_INTERFACE:
        dst->u.iface.name = NULL;
        dst->u.iface.value = NULL;
        if (src->u.iface.name && !(dst->u.iface.name = strdup(src->u.iface.name)))
            return GP_ENOMEM;
        if (src->u.iface.value) {
            dst->u.iface.value = calloc(1, sizeof *dst->u.iface.value);
            if (!dst->u.iface.value)
                return GP_ENOMEM;
            return copy_into(dst->u.iface.value, src->u.iface.value, depth + 1);
        }
        return GP_OK;
    default:
        return GP_OK;
    }
}

gp_err gp__gob_value_copy(gp__gob_value *dst, const gp__gob_value *src)
{
    gp_err e = copy_into(dst, src, 0);
    if (e != GP_OK)
        gp__gob_value_clear(dst);
    return e;
}
