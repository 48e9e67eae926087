/* Gob descriptors (goplugin/gob.h) for x.gp.c: one gp_gob_type per message
 * an RPC of the file sends or receives, directly or through its fields, so
 * the generated gp_methods also work on the netrpc wire. Field names are the
 * ones protoc-gen-go gives the Go struct (CamelCase of the proto name), so a
 * Go peer's gob structs that mirror the proto match by name. All of them are
 * static to the .gp.c: messages of imported files (well-known types too)
 * get their own copy, and nothing links across files. */
#include "codegen/protoc-gen-goplugin-c/codegen.h"

#include <stdlib.h>
#include <string.h>

typedef google_protobuf_DescriptorProto msg_desc;
typedef google_protobuf_FieldDescriptorProto field_desc;

/* protoc-gen-go's CamelCase: "user_id" -> "UserId", "_x" -> "X_x"... as
 * generator.go of golang/protobuf spells it: an underscore before a lower
 * case letter is dropped and the letter raised; digits stay; a leading
 * underscore becomes 'X'. */
static void go_camel(gp__strbuf *b, const char *s)
{
    if (!s)
        s = ""; /* a nameless field in a broken request */
    size_t n = strlen(s), i = 0;
    if (n && s[0] == '_') {
        gp__strbuf_append(b, "X");
        i = 1;
    }
    for (; i < n; i++) {
        char c = s[i];
        if (c == '_' && i + 1 < n && s[i + 1] >= 'a' && s[i + 1] <= 'z')
            continue;
        if (c >= '0' && c <= '9') {
            gp__strbuf_appendn(b, &c, 1);
            continue;
        }
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        gp__strbuf_appendn(b, &c, 1);
        while (i + 1 < n && s[i + 1] >= 'a' && s[i + 1] <= 'z')
            gp__strbuf_appendn(b, &s[++i], 1);
    }
}

/* A message found by full name, with the file (package) it belongs to. */
typedef struct found {
    const gp__cg_file *file;
    const msg_desc *msg;
} found;

/* Walk "Outer.Inner" (no package) through the nested types of `m`. */
static const msg_desc *walk(const msg_desc *m, pb_size_t count, const char *rest)
{
    const char *dot = strchr(rest, '.');
    size_t len = dot ? (size_t)(dot - rest) : strlen(rest);
    for (pb_size_t i = 0; i < count; i++) {
        if (!m[i].name || strlen(m[i].name) != len || strncmp(m[i].name, rest, len) != 0)
            continue;
        if (!dot)
            return &m[i];
        const msg_desc *r = walk(m[i].nested_type, m[i].nested_type_count, dot + 1);
        if (r)
            return r;
    }
    return NULL;
}

static found find_message(const gp__cg_request *req, const char *full)
{
    found r = {NULL, NULL};
    if (!full || full[0] != '.')
        return r;
    for (pb_size_t i = 0; i < req->proto_file_count && !r.msg; i++) {
        const gp__cg_file *f = &req->proto_file[i];
        const char *rest = full + 1;
        size_t pl = f->package ? strlen(f->package) : 0;
        if (pl) {
            if (strncmp(rest, f->package, pl) != 0 || rest[pl] != '.')
                continue;
            rest += pl + 1;
        }
        r.msg = walk(f->message_type, f->message_type_count, rest);
        r.file = r.msg ? f : NULL;
    }
    return r;
}

/* The messages to describe, in the order first reached. */
typedef struct todo {
    char **full;
    found *at;
    size_t n, cap;
} todo;

static gp_err todo_add(todo *t, const gp__cg_request *req, const char *full, gp__strbuf *err,
                       const char *user)
{
    if (!full || !*full) {
        gp__strbuf_printf(err, "%s: a message field names no message type", user);
        return GP_EINVAL;
    }
    if (!full)
        full = ""; /* no type name in the request: refused below, with words */
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->full[i], full) == 0)
            return GP_OK;
    found at = find_message(req, full);
    if (!at.msg) {
        gp__strbuf_printf(err, "%s: message type ", user);
        gp__strbuf_quote(err, full, strlen(full), 80);
        gp__strbuf_append(err, " is not in the request's files");
        return GP_EINVAL;
    }
    if (!gp__cg_is_ident(full + 1, 1)) {
        gp__strbuf_printf(err, "%s: message type ", user);
        gp__strbuf_quote(err, full, strlen(full), 80);
        gp__strbuf_append(err, " is not a dotted identifier");
        return GP_EINVAL;
    }
    if (t->n >= GP_CG_OPTIONS_MESSAGES_MAX) {
        gp__strbuf_printf(err, "%s: more than %d message types reachable from its RPCs", user,
                          GP_CG_OPTIONS_MESSAGES_MAX);
        return GP_EINVAL;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **nf = realloc(t->full, cap * sizeof *nf);
        if (!nf)
            return GP_ENOMEM;
        t->full = nf;
        found *na = realloc(t->at, cap * sizeof *na);
        if (!na)
            return GP_ENOMEM;
        t->at = na;
        t->cap = cap;
    }
    char *copy = strdup(full);
    if (!copy)
        return GP_ENOMEM;
    t->full[t->n] = copy;
    t->at[t->n] = at;
    t->n++;
    return GP_OK;
}

static void todo_free(todo *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->full[i]);
    free(t->full);
    free(t->at);
}

static int is_message(const field_desc *fd)
{
    return fd->type == google_protobuf_FieldDescriptorProto_Type_TYPE_MESSAGE ||
           fd->type == google_protobuf_FieldDescriptorProto_Type_TYPE_GROUP;
}

/* The predefined gob type of a scalar field, NULL for messages. */
static const char *scalar_gob(const field_desc *fd)
{
    switch (fd->type) {
    case google_protobuf_FieldDescriptorProto_Type_TYPE_DOUBLE:
    case google_protobuf_FieldDescriptorProto_Type_TYPE_FLOAT:
        return "gp_gob_float_type";
    case google_protobuf_FieldDescriptorProto_Type_TYPE_INT64:
    case google_protobuf_FieldDescriptorProto_Type_TYPE_INT32:
    case google_protobuf_FieldDescriptorProto_Type_TYPE_SFIXED32:
    case google_protobuf_FieldDescriptorProto_Type_TYPE_SFIXED64:
    case google_protobuf_FieldDescriptorProto_Type_TYPE_SINT32:
    case google_protobuf_FieldDescriptorProto_Type_TYPE_SINT64:
    case google_protobuf_FieldDescriptorProto_Type_TYPE_ENUM:
        return "gp_gob_int_type";
    case google_protobuf_FieldDescriptorProto_Type_TYPE_UINT64:
    case google_protobuf_FieldDescriptorProto_Type_TYPE_FIXED64:
    case google_protobuf_FieldDescriptorProto_Type_TYPE_FIXED32:
    case google_protobuf_FieldDescriptorProto_Type_TYPE_UINT32:
        return "gp_gob_uint_type";
    case google_protobuf_FieldDescriptorProto_Type_TYPE_BOOL:
        return "gp_gob_bool_type";
    case google_protobuf_FieldDescriptorProto_Type_TYPE_STRING:
        return "gp_gob_string_type";
    case google_protobuf_FieldDescriptorProto_Type_TYPE_BYTES:
        return "gp_gob_bytes_type";
    default:
        return NULL;
    }
}

/* "gob_pkg_Outer_Inner" for ".pkg.Outer.Inner". */
static void gob_ident(gp__strbuf *b, const char *full)
{
    gp__strbuf_append(b, "gob_");
    gp__cg_append_c_name(b, full);
}

/* Go's type name: the message path without the package, CamelCased. */
static void go_type_name(gp__strbuf *b, const found *at, const char *full)
{
    const char *t = full + 1;
    size_t pl = at->file->package ? strlen(at->file->package) : 0;
    if (pl)
        t += pl + 1;
    gp__strbuf tmp;
    gp__strbuf_init(&tmp);
    for (; *t; t++) {
        char c = *t == '.' ? '_' : *t;
        gp__strbuf_appendn(&tmp, &c, 1);
    }
    go_camel(b, tmp.data ? tmp.data : "");
    gp__strbuf_free(&tmp);
}

/* Go struct field names of one message: protoc-gen-go appends '_' to a name
 * (and its getter's) while either is taken by a generated method or an
 * earlier field. names[i] is the Go name of m->field[i]. */
typedef struct go_names {
    char **v;
    size_t n;
} go_names;

static int used(char *const *set, size_t n, const char *s)
{
    if (!s)
        s = ""; /* an empty strbuf (a nameless field) has no data yet */
    for (size_t i = 0; i < n; i++)
        if (set[i] && strcmp(set[i], s) == 0)
            return 1;
    return 0;
}

static void names_free(go_names *g);

static gp_err field_names(const msg_desc *m, go_names *out)
{
    static const char *const methods[] = {"Reset",        "String",    "ProtoMessage",
                                          "Marshal",      "Unmarshal", "ExtensionRangeArray",
                                          "ExtensionMap", "Descriptor"};
    size_t nm = sizeof methods / sizeof methods[0];
    size_t cap = nm + 2u * m->field_count;
    char **set = calloc(cap ? cap : 1, sizeof *set);
    out->v = calloc(m->field_count ? m->field_count : 1, sizeof *out->v);
    out->n = m->field_count;
    if (!set || !out->v) {
        free(set);
        free(out->v);
        out->v = NULL;
        return GP_ENOMEM;
    }
    size_t ns = 0;
    for (size_t i = 0; i < nm; i++)
        set[ns++] = strdup(methods[i]);
    gp_err e = GP_OK;
    for (pb_size_t i = 0; i < m->field_count && !e; i++) {
        if (!m->field[i].name || !*m->field[i].name) {
            e = GP_EINVAL; /* a nameless field: the caller says so */
            break;
        }
        gp__strbuf name, getter;
        gp__strbuf_init(&name);
        gp__strbuf_init(&getter);
        go_camel(&name, m->field[i].name);
        gp__strbuf_printf(&getter, "Get%s", name.data ? name.data : "");
        while (name.ok && getter.ok && (used(set, ns, name.data) || used(set, ns, getter.data))) {
            gp__strbuf_append(&name, "_");
            gp__strbuf_append(&getter, "_");
        }
        if (!name.ok || !getter.ok || !name.data) {
            e = GP_ENOMEM;
        } else {
            set[ns++] = strdup(name.data);
            set[ns++] = strdup(getter.data);
            out->v[i] = strdup(name.data);
            if (!out->v[i] || !set[ns - 1] || !set[ns - 2])
                e = GP_ENOMEM;
        }
        gp__strbuf_free(&name);
        gp__strbuf_free(&getter);
    }
    for (size_t i = 0; i < ns; i++)
        free(set[i]);
    free(set);
    if (e)
        names_free(out);
    return e;
}

static void names_free(go_names *g)
{
    for (size_t i = 0; g->v && i < g->n; i++)
        free(g->v[i]);
    free(g->v);
    g->v = NULL;
}

static gp_err check_field(const gp__cg_file *f, const char *full, const field_desc *fd,
                          gp__strbuf *err)
{
    if (!gp__cg_is_ident(fd->name, 0)) {
        gp__strbuf_printf(err, "%s: a field of %s has a name that is not an identifier: ", f->name,
                          full + 1);
        gp__strbuf_quote(err, fd->name ? fd->name : "", fd->name ? strlen(fd->name) : 0, 80);
        return GP_EINVAL;
    }
    if (!is_message(fd) && !scalar_gob(fd)) {
        gp__strbuf_printf(err, "%s: field %s.%s has type %d, which gob cannot carry", f->name,
                          full + 1, fd->name, (int)fd->type);
        return GP_EINVAL;
    }
    if (fd->number <= 0) {
        gp__strbuf_printf(err, "%s: field %s.%s has no field number", f->name, full + 1, fd->name);
        return GP_EINVAL;
    }
    return GP_OK;
}

/* One message: slice types for its repeated fields, the field table, the
 * struct type. */
static gp_err emit_message(gp__strbuf *b, const gp__cg_file *f, const char *full, const found *at,
                           gp__strbuf *err)
{
    const msg_desc *m = at->msg;
    go_names gn = {0};
    gp_err e = field_names(m, &gn);
    if (e == GP_EINVAL) {
        gp__strbuf_printf(err, "%s: message type ", f->name);
        gp__strbuf_quote(err, full, strlen(full), 80);
        gp__strbuf_append(err, " has a field with no name");
    }
    if (e)
        return e;
    gp__strbuf id;
    gp__strbuf_init(&id);
    gob_ident(&id, full);
    const char *ident = id.data ? id.data : "";

    gp__strbuf_append(b, "\n");
    for (pb_size_t i = 0; i < m->field_count && !e; i++) {
        const field_desc *fd = &m->field[i];
        if ((e = check_field(f, full, fd, err)))
            break;
        if (fd->label != google_protobuf_FieldDescriptorProto_Label_LABEL_REPEATED)
            continue;
        gp__strbuf_printf(b,
                          "static const gp_gob_type %s_%s_slice = {\n"
                          "    .kind = GP_GOB_SLICE, .elem = &",
                          ident, fd->name);
        if (is_message(fd))
            gob_ident(b, fd->type_name);
        else
            gp__strbuf_append(b, scalar_gob(fd));
        gp__strbuf_append(b, "};\n");
    }
    if (!e && m->field_count) {
        gp__strbuf_printf(b, "static const gp_gob_field %s_fields[] = {\n", ident);
        for (pb_size_t i = 0; i < m->field_count; i++) {
            const field_desc *fd = &m->field[i];
            gp__strbuf_printf(b, "    {\"%s\", &", gn.v[i]);
            if (fd->label == google_protobuf_FieldDescriptorProto_Label_LABEL_REPEATED)
                gp__strbuf_printf(b, "%s_%s_slice", ident, fd->name);
            else if (is_message(fd))
                gob_ident(b, fd->type_name);
            else
                gp__strbuf_append(b, scalar_gob(fd));
            gp__strbuf_printf(b, ", %d},\n", (int)fd->number);
        }
        gp__strbuf_append(b, "};\n");
    }
    if (!e) {
        gp__strbuf_printf(b,
                          "static const gp_gob_type %s = {\n    .kind = GP_GOB_STRUCT,\n"
                          "    .name = \"",
                          ident);
        go_type_name(b, at, full);
        gp__strbuf_append(b, "\",\n");
        if (m->field_count)
            gp__strbuf_printf(b, "    .fields = %s_fields,\n    .nfields = %u,\n", ident,
                              (unsigned)m->field_count);
        gp__strbuf_append(b, "};\n");
    }
    gp__strbuf_free(&id);
    names_free(&gn);
    return e;
}

gp_err gp__cg_emit_gob(const gp__cg_request *req, const gp__cg_file *f, gp__strbuf *out,
                       gp__strbuf *err)
{
    todo t = {0};
    gp_err e = GP_OK;
    for (pb_size_t i = 0; i < f->service_count && !e; i++)
        for (pb_size_t j = 0; j < f->service[i].method_count && !e; j++) {
            const google_protobuf_MethodDescriptorProto *m = &f->service[i].method[j];
            if (!(e = todo_add(&t, req, m->input_type, err, f->name)))
                e = todo_add(&t, req, m->output_type, err, f->name);
        }
    /* Grows while it is walked: every message field's type joins. */
    for (size_t k = 0; k < t.n && !e; k++) {
        const msg_desc *m = t.at[k].msg;
        for (pb_size_t i = 0; i < m->field_count && !e; i++)
            if (is_message(&m->field[i]))
                e = todo_add(&t, req, m->field[i].type_name, err, f->name);
    }
    if (!e && t.n) {
        gp__strbuf_append(out,
                          "\n/* Gob types of the netrpc wire: Go's field names (as protoc-gen-go\n"
                          " * writes them), nanopb's tags. Maps travel as slices of their\n"
                          " * XEntry{Key, Value} structs; oneof members as plain fields. */\n");
        /* Declared first: messages may refer to each other in any order. */
        for (size_t k = 0; k < t.n; k++) {
            gp__strbuf_append(out, "static const gp_gob_type ");
            gob_ident(out, t.full[k]);
            gp__strbuf_append(out, ";\n");
        }
        for (size_t k = 0; k < t.n && !e; k++)
            e = emit_message(out, f, t.full[k], &t.at[k], err);
    }
    todo_free(&t);
    return e;
}
