/* C names for proto names, the way nanopb spells them. */
#include "codegen/protoc-gen-goplugin-c/codegen.h"

#include <ctype.h>
#include <string.h>

static int path_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '/' || c == '-';
}

gp_err gp__cg_output_name(const char *proto, const char *suffix, gp__strbuf *out, gp__strbuf *err)
{
    size_t n = proto ? strlen(proto) : 0;
    static const char ext[] = ".proto";
    if (n <= sizeof ext - 1 || strcmp(proto + n - (sizeof ext - 1), ext) != 0) {
        gp__strbuf_append(err, "expected a file name ending in .proto, got ");
        gp__strbuf_quote(err, proto ? proto : "", n, 80);
        return GP_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!path_char(proto[i])) {
            /* It lands inside #include "..." and comments. */
            gp__strbuf_append(err, "file name ");
            gp__strbuf_quote(err, proto, n, 80);
            gp__strbuf_append(err, " has characters other than [A-Za-z0-9_./-]");
            return GP_EINVAL;
        }
    }
    gp__strbuf_appendn(out, proto, n - (sizeof ext - 1));
    gp__strbuf_append(out, suffix);
    return GP_OK;
}

int gp__cg_is_ident(const char *s, int dotted)
{
    if (!s || !*s)
        return 0;
    int start = 1;
    for (; *s; s++) {
        if (*s == '.' && dotted && !start) {
            start = 1;
            continue;
        }
        if (!(isalnum((unsigned char)*s) || *s == '_') || (start && isdigit((unsigned char)*s)))
            return 0;
        start = 0;
    }
    return !start;
}

int gp__cg_is_c_keyword(const char *s)
{
    static const char *const kw[] = {
        "auto",       "break",     "case",           "char",
        "const",      "continue",  "default",        "do",
        "double",     "else",      "enum",           "extern",
        "float",      "for",       "goto",           "if",
        "inline",     "int",       "long",           "register",
        "restrict",   "return",    "short",          "signed",
        "sizeof",     "static",    "struct",         "switch",
        "typedef",    "union",     "unsigned",       "void",
        "volatile",   "while",     "_Alignas",       "_Alignof",
        "_Atomic",    "_Bool",     "_Complex",       "_Generic",
        "_Imaginary", "_Noreturn", "_Static_assert", "_Thread_local",
    };
    for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++)
        if (strcmp(s, kw[i]) == 0)
            return 1;
    return 0;
}

void gp__cg_append_c_name(gp__strbuf *b, const char *dotted)
{
    if (*dotted == '.')
        dotted++;
    for (; *dotted; dotted++) {
        char c = *dotted == '.' ? '_' : *dotted;
        gp__strbuf_appendn(b, &c, 1);
    }
}

void gp__cg_append_guard(gp__strbuf *b, const char *path)
{
    for (; *path; path++) {
        char c = isalnum((unsigned char)*path) ? (char)toupper((unsigned char)*path) : '_';
        gp__strbuf_appendn(b, &c, 1);
    }
}
