/* go-plugin's ReattachConfig as a JSON file: strict parse, atomic write. */
#include <goplugin/reattach.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport/base/errf.h"
#include "transport/base/strbuf.h"

#define MAX_ADDR 4096

/* "reattach: <what>: expected <want>, got <the JSON, quoted, cut>". */
static gp_err bad_value(gp_status *st, const char *what, const char *want, const json_t *v)
{
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    gp__strbuf q;
    gp__strbuf_init(&q);
    gp__strbuf_quote(&q, text ? text : "?", text ? strlen(text) : 1, 60);
    gp_err rc = gp__status_setf(st, GP_EPROTO, "reattach: %s: expected %s, got %s", what, want,
                                q.ok ? q.data : "?");
    gp__strbuf_free(&q);
    free(text);
    return rc;
}

static bool get_int(const json_t *v, json_int_t max, json_int_t *out)
{
    if (!json_is_integer(v))
        return false;
    json_int_t n = json_integer_value(v);
    if (n < 0 || n > max)
        return false;
    *out = n;
    return true;
}

/* "host:port" with a decimal port 0..65535. */
static bool tcp_addr_ok(const char *s)
{
    const char *c = strrchr(s, ':');
    if (!c || c == s || !c[1] || strlen(c + 1) > 5)
        return false;
    long port = 0;
    for (const char *p = c + 1; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        port = port * 10 + (*p - '0');
    }
    return port <= 65535;
}

static gp_err parse_addr(const json_t *addr, gp_reattach_config *out, gp_status *st)
{
    if (!json_is_object(addr))
        return bad_value(st, "\"Addr\"", "an object {\"Network\", \"String\"}", addr);
    const char *key;
    json_t *v;
    const char *network = NULL, *address = NULL;
    json_object_foreach((json_t *)addr, key, v)
    {
        if (strcmp(key, "Network") == 0) {
            if (!json_is_string(v) || (strcmp(json_string_value(v), "unix") != 0 &&
                                       strcmp(json_string_value(v), "tcp") != 0))
                return bad_value(st, "\"Addr.Network\"", "\"unix\" or \"tcp\"", v);
            network = json_string_value(v);
        } else if (strcmp(key, "String") == 0) {
            if (!json_is_string(v) || json_string_length(v) == 0 ||
                json_string_length(v) > MAX_ADDR)
                return bad_value(st, "\"Addr.String\"", "a non-empty address string", v);
            address = json_string_value(v);
        } else {
            gp__strbuf q;
            gp__strbuf_init(&q);
            gp__strbuf_quote(&q, key, strlen(key), 40);
            gp_err rc = gp__status_setf(st, GP_EPROTO,
                                        "reattach: unknown key %s in \"Addr\"; expected "
                                        "\"Network\" and \"String\"",
                                        q.ok ? q.data : "?");
            gp__strbuf_free(&q);
            return rc;
        }
    }
    if (!network || !address)
        return gp__status_setf(st, GP_EPROTO, "reattach: \"Addr\" is missing \"%s\"",
                               network ? "String" : "Network");
    if (strcmp(network, "tcp") == 0 && !tcp_addr_ok(address))
        return bad_value(st, "\"Addr.String\"", "\"host:port\" for tcp",
                         json_object_get(addr, "String"));
    out->network = strdup(network);
    out->address = strdup(address);
    if (!out->network || !out->address)
        return gp__status_setf(st, GP_ENOMEM, "reattach: out of memory");
    return GP_OK;
}

gp_err gp_reattach_parse(const char *data, size_t len, gp_reattach_config *out, gp_status *st)
{
    gp__status_clear(st);
    memset(out, 0, sizeof *out);
    if (len > GP_REATTACH_FILE_MAX)
        return gp__status_setf(st, GP_EMSGSIZE, "reattach: %zu bytes, at most %u allowed", len,
                               (unsigned)GP_REATTACH_FILE_MAX);
    json_error_t je;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return gp__status_setf(st, GP_EPROTO,
                               "reattach: not a JSON object: %s (line %d, column %d)", je.text,
                               je.line, je.column);
    gp_err rc = GP_OK;
    bool have_proto = false, have_pid = false, have_addr = false;
    const char *key;
    json_t *v;
    if (!json_is_object(root)) {
        rc = bad_value(st, "top level", "an object", root);
        goto done;
    }
    json_object_foreach(root, key, v)
    {
        json_int_t n;
        if (strcmp(key, "Protocol") == 0) {
            const char *p = json_is_string(v) ? json_string_value(v) : NULL;
            if (p && strcmp(p, "grpc") == 0)
                out->protocol = GP_PROTO_GRPC;
            else if (p && strcmp(p, "netrpc") == 0)
                out->protocol = GP_PROTO_NETRPC;
            else if (p && !*p)
                out->protocol = GP_PROTO_NONE; /* go-plugin: empty means netrpc */
            else {
                rc = bad_value(st, "\"Protocol\"", "\"grpc\", \"netrpc\" or \"\"", v);
                goto done;
            }
            have_proto = true;
        } else if (strcmp(key, "ProtocolVersion") == 0) {
            if (!get_int(v, INT_MAX, &n)) {
                rc = bad_value(st, "\"ProtocolVersion\"", "an integer 0..2147483647", v);
                goto done;
            }
            out->protocol_version = (unsigned)n;
        } else if (strcmp(key, "Pid") == 0) {
            if (!get_int(v, INT_MAX, &n)) {
                rc = bad_value(st, "\"Pid\"", "an integer 0..2147483647", v);
                goto done;
            }
            out->pid = (pid_t)n;
            have_pid = true;
        } else if (strcmp(key, "PidStartTime") == 0) {
            /* Ours, optional: go-plugin ignores keys it does not know. */
            if (!get_int(v, INT64_MAX, &n)) {
                rc = bad_value(st, "\"PidStartTime\"", "an integer 0..9223372036854775807", v);
                goto done;
            }
            out->start_time = (uint64_t)n;
        } else if (strcmp(key, "Test") == 0) {
            if (!json_is_boolean(v)) {
                rc = bad_value(st, "\"Test\"", "true or false", v);
                goto done;
            }
            out->test = json_is_true(v);
        } else if (strcmp(key, "Addr") == 0) {
            if ((rc = parse_addr(v, out, st)))
                goto done;
            have_addr = true;
        } else {
            gp__strbuf q;
            gp__strbuf_init(&q);
            gp__strbuf_quote(&q, key, strlen(key), 40);
            rc = gp__status_setf(st, GP_EPROTO,
                                 "reattach: unknown key %s; expected \"Protocol\", "
                                 "\"ProtocolVersion\", \"Addr\", \"Pid\", \"Test\", "
                                 "\"PidStartTime\"",
                                 q.ok ? q.data : "?");
            gp__strbuf_free(&q);
            goto done;
        }
    }
    if (!have_proto || !have_addr || !have_pid)
        rc = gp__status_setf(st, GP_EPROTO, "reattach: missing \"%s\"",
                             !have_proto  ? "Protocol"
                             : !have_addr ? "Addr"
                                          : "Pid");
done:
    json_decref(root);
    if (rc)
        gp_reattach_config_clear(out);
    return rc;
}

void gp_reattach_config_clear(gp_reattach_config *rc)
{
    free((char *)rc->network);
    free((char *)rc->address);
    memset(rc, 0, sizeof *rc);
}

gp_err gp_reattach_format(const gp_reattach_config *rc, char **out, gp_status *st)
{
    gp__status_clear(st);
    *out = NULL;
    const char *proto;
    switch (rc->protocol) {
    case GP_PROTO_NONE:
        proto = "";
        break;
    case GP_PROTO_NETRPC:
        proto = "netrpc";
        break;
    case GP_PROTO_GRPC:
        proto = "grpc";
        break;
    default:
        return gp__status_setf(st, GP_EINVAL, "reattach: protocol %d, expected one of grpc, netrpc",
                               (int)rc->protocol);
    }
    if (!rc->network || (strcmp(rc->network, "unix") != 0 && strcmp(rc->network, "tcp") != 0))
        return gp__status_setf(st, GP_EINVAL, "reattach: network \"%s\", expected unix or tcp",
                               rc->network ? rc->network : "(null)");
    if (!rc->address || !*rc->address || strlen(rc->address) > MAX_ADDR)
        return gp__status_setf(st, GP_EINVAL, "reattach: address empty or over %d bytes", MAX_ADDR);
    if (strcmp(rc->network, "tcp") == 0 && !tcp_addr_ok(rc->address))
        return gp__status_setf(st, GP_EINVAL, "reattach: tcp address \"%s\", expected host:port",
                               rc->address);
    if (rc->pid < 0 || rc->protocol_version > (unsigned)INT_MAX)
        return gp__status_setf(st, GP_EINVAL, "reattach: negative pid or version out of range");
    /* Go's field order, so a diff against a Go-written file is quiet. */
    json_t *o = json_object();
    json_t *a = json_object();
    if (!o || !a || json_object_set_new(o, "Protocol", json_string(proto)) ||
        json_object_set_new(o, "ProtocolVersion", json_integer(rc->protocol_version)) ||
        json_object_set_new(a, "Network", json_string(rc->network)) ||
        json_object_set_new(a, "String", json_string(rc->address)) ||
        json_object_set(o, "Addr", a) || json_object_set_new(o, "Pid", json_integer(rc->pid)) ||
        json_object_set_new(o, "Test", json_boolean(rc->test)) ||
        (rc->start_time > (uint64_t)INT64_MAX) ||
        (rc->start_time &&
         json_object_set_new(o, "PidStartTime", json_integer((json_int_t)rc->start_time)))) {
        json_decref(a);
        json_decref(o);
        return gp__status_setf(st, GP_EINVAL,
                               "reattach: cannot build JSON (bad UTF-8 in the address?)");
    }
    json_decref(a);
    char *text = json_dumps(o, JSON_INDENT(2));
    json_decref(o);
    if (!text)
        return gp__status_setf(st, GP_ENOMEM, "reattach: out of memory");
    size_t n = strlen(text);
    char *withnl = realloc(text, n + 2);
    if (!withnl) {
        free(text);
        return gp__status_setf(st, GP_ENOMEM, "reattach: out of memory");
    }
    withnl[n] = '\n';
    withnl[n + 1] = 0;
    *out = withnl;
    return GP_OK;
}

static gp_err sys(gp_status *st, const char *what, const char *path)
{
    int e = errno;
    return gp__status_setf(st, GP_ESYS, "reattach: %s %s: %s", what, path, strerror(e));
}

gp_err gp_reattach_file_write(const char *path, const gp_reattach_config *rc, gp_status *st)
{
    gp__status_clear(st);
    if (!path || !*path || path[strlen(path) - 1] == '/')
        return gp__status_setf(st, GP_EINVAL, "reattach: file path \"%s\" names no file",
                               path ? path : "(null)");
    char *text;
    gp_err err = gp_reattach_format(rc, &text, st);
    if (err)
        return err;
    /* The temp file lives next to the target: rename is atomic only
     * within one file system. */
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) : 0;
    char *dir = slash ? strndup(path, dirlen ? dirlen : 1) : strdup(".");
    char *tmp = NULL;
    if (!dir || asprintf(&tmp, "%.*s%s.%s.tmp-XXXXXX", (int)dirlen, path, slash ? "/" : "",
                         slash ? slash + 1 : path) < 0) {
        free(dir);
        free(text);
        return gp__status_setf(st, GP_ENOMEM, "reattach: out of memory");
    }
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        err = sys(st, "create temp file in", dir);
        goto out;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            err = sys(st, "write", tmp);
            break;
        }
        off += (size_t)w;
    }
    if (!err && fsync(fd) < 0)
        err = sys(st, "fsync", tmp);
    if (close(fd) < 0 && !err)
        err = sys(st, "close", tmp);
    if (!err && rename(tmp, path) < 0)
        err = sys(st, "rename to", path);
    if (err) {
        unlink(tmp);
        goto out;
    }
    /* Make the rename itself durable. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0)
        err = sys(st, "fsync directory", dir);
    if (dfd >= 0)
        close(dfd);
out:
    free(tmp);
    free(dir);
    free(text);
    return err;
}

gp_err gp_reattach_file_read(const char *path, gp_reattach_config *out, gp_status *st)
{
    gp__status_clear(st);
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return gp__status_setf(st, GP_ENOTFOUND, "reattach: %s does not exist", path);
        return sys(st, "open", path);
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return gp__status_setf(st, GP_EINVAL, "reattach: %s is not a regular file", path);
    }
    char *buf = malloc(GP_REATTACH_FILE_MAX + 1);
    if (!buf) {
        close(fd);
        return gp__status_setf(st, GP_ENOMEM, "reattach: out of memory");
    }
    size_t n = 0;
    while (n <= GP_REATTACH_FILE_MAX) {
        ssize_t r = read(fd, buf + n, GP_REATTACH_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            gp_err rc = sys(st, "read", path);
            free(buf);
            close(fd);
            return rc;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    gp_err rc = gp_reattach_parse(buf, n, out, st);
    free(buf);
    if (rc && st) {
        /* Say which file. */
        const char *p = "reattach: ";
        size_t pl = strlen(p);
        gp__strbuf b;
        gp__strbuf_init(&b);
        gp__strbuf_printf(&b, "reattach: %s: %s", path,
                          strncmp(st->msg, p, pl) == 0 ? st->msg + pl : st->msg);
        if (b.ok)
            snprintf(st->msg, sizeof st->msg, "%.*s", (int)(sizeof st->msg - 1), b.data);
        gp__strbuf_free(&b);
    }
    return rc;
}
