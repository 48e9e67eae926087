/* gpctl's store commands in direct mode (the caller holds the lock, or
 * opened the store read-only for ls and inspect). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <goplugin/reattach.h>

#include "tools/gpctl/gpctl.h"

#define MAX_REPEAT 64 /* of one repeatable option */

typedef struct strlist {
    const char *v[MAX_REPEAT + 1];
    size_t n;
} strlist;

static int add(strlist *l, const char *opt, const char *s)
{
    if (l->n >= MAX_REPEAT)
        return gpctl_fail("install: %s given more than %d times", opt, MAX_REPEAT);
    l->v[l->n++] = s;
    l->v[l->n] = NULL;
    return 0;
}

static int parse_hex32(const char *s, uint8_t out[32])
{
    if (strlen(s) != 64)
        return -1;
    for (int i = 0; i < 32; i++) {
        unsigned b;
        if (sscanf(s + 2 * i, "%2x", &b) != 1 || !strchr("0123456789abcdefABCDEF", s[2 * i]) ||
            !strchr("0123456789abcdefABCDEF", s[2 * i + 1]))
            return -1;
        out[i] = (uint8_t)b;
    }
    return 0;
}

int gpctl_install_path_index(int argc, char *const *argv)
{
    /* As gpctl_install's option loop: "--NAME VALUE" pairs until "--" or
     * a word without a dash. */
    int i = 1;
    while (i < argc && argv[i][0] == '-' && strcmp(argv[i], "--") != 0)
        i += 2;
    return i < argc ? i : -1;
}

int gpctl_install(gp_store *s, int argc, char **argv)
{
    strlist env = {0}, req = {0}, grant = {0};
    unsigned versions[16];
    size_t nversions = 0;
    uint8_t sha[32];
    gp_store_install_opts o = {0};
    char *cookie = NULL;
    int i = 1, rc = 0;
    for (; i < argc && argv[i][0] == '-' && strcmp(argv[i], "--") != 0; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            gpctl_usage();
            return gpctl_fail("install: %s needs a value", a);
        }
        i++;
        if (strcmp(a, "--proto") == 0) {
            unsigned bit = strcmp(v, "grpc") == 0     ? GP_PROTO_GRPC
                           : strcmp(v, "netrpc") == 0 ? GP_PROTO_NETRPC
                                                      : 0;
            if (!bit)
                return gpctl_fail("install: --proto \"%s\": grpc or netrpc", v);
            o.protocols |= bit;
        } else if (strcmp(a, "--cookie") == 0) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v)
                return gpctl_fail("install: --cookie \"%s\": KEY=VALUE", v);
            free(cookie);
            if (!(cookie = strdup(v)))
                return gpctl_fail("out of memory");
            cookie[eq - v] = '\0';
            o.cookie_key = cookie;
            o.cookie_value = cookie + (eq - v) + 1;
        } else if (strcmp(a, "--env") == 0) {
            rc = add(&env, a, v);
        } else if (strcmp(a, "--require") == 0) {
            rc = add(&req, a, v);
        } else if (strcmp(a, "--grant") == 0) {
            rc = add(&grant, a, v);
        } else if (strcmp(a, "--version") == 0) {
            char *end;
            errno = 0;
            unsigned long n = strtoul(v, &end, 10);
            if (errno || *end || n < 1 || n > 0x7fffffffUL || v[0] == '-')
                rc = gpctl_fail("install: --version \"%s\": a number 1..2147483647", v);
            else if (nversions >= 16)
                rc = gpctl_fail("install: --version given more than 16 times");
            else
                versions[nversions++] = (unsigned)n;
        } else if (strcmp(a, "--restart") == 0) {
            if (strcmp(v, "always") == 0)
                o.restart = GP_STORE_RESTART_ALWAYS;
            else if (strcmp(v, "no") == 0)
                o.restart = GP_STORE_RESTART_NO;
            else
                rc = gpctl_fail("install: --restart \"%s\": always or no", v);
        } else if (strcmp(a, "--sha256") == 0) {
            if (parse_hex32(v, sha) != 0)
                rc = gpctl_fail("install: --sha256 \"%s\": 64 hex digits", v);
            o.expect_sha256 = sha;
        } else {
            gpctl_usage();
            rc = gpctl_fail("install: unknown option \"%s\"", a);
        }
        if (rc) {
            free(cookie);
            return rc;
        }
    }
    if (argc - i < 2) {
        free(cookie);
        gpctl_usage();
        return gpctl_fail("install: PATH and NAME[:TAG] are required");
    }
    o.path = argv[i];
    o.name = argv[i + 1];
    i += 2;
    if (i < argc && strcmp(argv[i], "--") != 0) {
        free(cookie);
        gpctl_usage();
        return gpctl_fail("install: unexpected \"%s\" (plugin arguments go after --)", argv[i]);
    }
    o.args = i < argc ? (const char *const *)argv + i + 1 : NULL;
    o.env = env.v;
    o.required = req.v;
    o.granted = grant.v;
    o.versions = nversions ? versions : NULL;
    o.nversions = nversions;
    if (!s) {
        free(cookie);
        return 0;
    }
    gp_store_record *r;
    gp_status st;
    gp_err err = gp_store_install(s, &o, &r, &st);
    free(cookie);
    if (err != GP_OK)
        return gpctl_fail("%s", st.msg);
    fprintf(gpctl_out, "%s\n", r->id);
    gp_store_record_free(r);
    return 0;
}

/* The running pid from ROOT/run/NAME.json (the manager writes it), or 0. */
static long running_pid(gp_store *s, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/run/%s.json", gp_store_root(s), name);
    gp_reattach_config rc;
    if (gp_reattach_file_read(path, &rc, NULL) != GP_OK)
        return 0;
    long pid = rc.pid;
    gp_reattach_config_clear(&rc);
    return pid;
}

int gpctl_ls(gp_store *s, int argc, char **argv)
{
    (void)argv;
    if (argc != 1)
        return gpctl_fail("ls takes no arguments");
    if (!s)
        return 0;
    gp_store_record **list;
    size_t n;
    gp_status st;
    if (gp_store_list(s, &list, &n, &st) != GP_OK)
        return gpctl_fail("%s", st.msg);
    for (size_t i = 0; i < n; i++) {
        const gp_store_record *r = list[i];
        long pid = running_pid(s, r->name);
        char pidbuf[24] = "-";
        if (pid > 0)
            snprintf(pidbuf, sizeof pidbuf, "%ld", pid);
        fprintf(gpctl_out, "%s:%s %s %s %s\n", r->name, r->tag, r->id,
                r->enabled ? "enabled" : "disabled", pidbuf);
    }
    gp_store_record_list_free(list);
    return fflush(gpctl_out) == 0 ? 0 : gpctl_fail("ls: cannot write: %s", strerror(errno));
}

static int one_name(int argc, char **argv, const char **name)
{
    if (argc != 2) {
        gpctl_usage();
        return gpctl_fail("%s: exactly one NAME is required", argv[0]);
    }
    *name = argv[1];
    return 0;
}

int gpctl_inspect(gp_store *s, int argc, char **argv)
{
    const char *name = NULL;
    if (one_name(argc, argv, &name))
        return 1;
    if (!s)
        return 0;
    gp_store_record *r;
    gp_status st;
    char *json;
    if (gp_store_get(s, name, &r, &st) != GP_OK)
        return gpctl_fail("%s", st.msg);
    gp_err rc = gp_store_record_json(r, &json, &st);
    gp_store_record_free(r);
    if (rc != GP_OK)
        return gpctl_fail("%s", st.msg);
    fputs(json, gpctl_out);
    free(json);
    return 0;
}

int gpctl_enable(gp_store *s, int argc, char **argv)
{
    const char *name = NULL;
    gp_status st;
    if (one_name(argc, argv, &name))
        return 1;
    if (!s)
        return 0;
    return gp_store_enable(s, name, &st) == GP_OK ? 0 : gpctl_fail("%s", st.msg);
}

int gpctl_disable(gp_store *s, int argc, char **argv)
{
    const char *name = NULL;
    gp_status st;
    if (one_name(argc, argv, &name))
        return 1;
    if (!s)
        return 0;
    return gp_store_disable(s, name, &st) == GP_OK ? 0 : gpctl_fail("%s", st.msg);
}

int gpctl_grant(gp_store *s, int argc, char **argv)
{
    if (argc < 2) {
        gpctl_usage();
        return gpctl_fail("grant: NAME is required");
    }
    if (!s)
        return 0;
    gp_status st;
    return gp_store_grant(s, argv[1], (const char *const *)argv + 2, &st) == GP_OK
               ? 0
               : gpctl_fail("%s", st.msg);
}

int gpctl_rm(gp_store *s, int argc, char **argv)
{
    bool force = argc > 1 && strcmp(argv[1], "-f") == 0;
    const char *name = NULL;
    if (one_name(argc - force, argv + force, &name))
        return 1;
    if (!s)
        return 0;
    gp_status st;
    return gp_store_remove(s, name, force, &st) == GP_OK ? 0 : gpctl_fail("%s", st.msg);
}

int gpctl_gc(gp_store *s, int argc, char **argv)
{
    (void)argv;
    if (argc != 1)
        return gpctl_fail("gc takes no arguments");
    if (!s)
        return 0;
    size_t blobs;
    uint64_t bytes;
    gp_status st;
    if (gp_store_gc(s, &blobs, &bytes, &st) != GP_OK)
        return gpctl_fail("%s", st.msg);
    fprintf(gpctl_out, "%zu blob%s, %llu bytes freed\n", blobs, blobs == 1 ? "" : "s",
            (unsigned long long)bytes);
    return 0;
}
