/*
 * headers: the "headers" example filter written in C directly against the
 * Sluice ABI (abi/ABI.md), with no SDK. It behaves like the Go and Rust
 * versions beside it, and the conformance kit holds it to the same table:
 *
 *   [plugin.config.request]
 *   remove = ["X-Internal"]
 *   set = { "X-Env" = "prod" }
 *   add = { "X-Tag" = ["a", "b"] }
 *   [plugin.config.response]
 *   set = { "X-Powered-By" = "sluice" }
 *
 * Each side applies remove, then set, then add, each in config order; a set
 * with a list replaces with the first value and adds the rest. A side with
 * no rules is left out of sluice_hooks, so the proxy never calls it. The
 * config is checked when the module loads: unknown keys, wrong types,
 * invalid header names and values with control characters refuse it.
 *
 * Build (examples/build-c.sh does this):
 *   clang-19 --target=wasm32-wasi -O2 -mexec-model=reactor -Wl,--strip-all \
 *     -o headers.c.wasm headers.c
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- the host functions this filter imports (module "sluice") ---- */

#define IMPORT(name) __attribute__((import_module("sluice"), import_name(name)))

IMPORT("log") void host_log(int32_t level, const char *msg, int32_t msg_len);
IMPORT("get_config") int32_t host_get_config(char *buf, int32_t cap);
IMPORT("set_header")
void host_set_header(int32_t kind, const char *name, int32_t name_len, const char *value, int32_t value_len);
IMPORT("add_header")
void host_add_header(int32_t kind, const char *name, int32_t name_len, const char *value, int32_t value_len);
IMPORT("remove_header") void host_remove_header(int32_t kind, const char *name, int32_t name_len);

#define EXPORT(name) __attribute__((export_name(name)))

enum { LOG_ERROR = 2, HEADER_REQUEST = 0, HEADER_RESPONSE = 1 };
enum { HOOK_REQUEST_HEADERS = 1, HOOK_RESPONSE_HEADERS = 2 };

/* ---- the compiled rules ---- */

typedef struct {
    char kind; /* 'r'emove, 's'et, 'a'dd */
    char *name, *value;
    int32_t name_len, value_len;
} op;

typedef struct {
    op *ops;
    int n, cap;
} ops;

static ops sides[2]; /* request, response */

static int push(ops *o, char kind, char *name, int32_t name_len, char *value, int32_t value_len) {
    if (o->n == o->cap) {
        int cap = o->cap ? 2 * o->cap : 8;
        op *p = realloc(o->ops, (size_t)cap * sizeof(op));
        if (!p) return 0;
        o->ops = p, o->cap = cap;
    }
    o->ops[o->n++] = (op){kind, name, value, name_len, value_len};
    return 1;
}

/* ---- a small strict JSON reader, enough for the config ---- */

typedef struct {
    const char *p, *end;
    const char *err; /* the first error, static text */
} reader;

static int fail(reader *r, const char *msg) {
    if (!r->err) r->err = msg;
    return 0;
}

static void ws(reader *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')) r->p++;
}

static int peek(reader *r) {
    ws(r);
    return r->p < r->end ? (unsigned char)*r->p : -1;
}

static int expect(reader *r, char c) {
    if (peek(r) != c) return fail(r, "malformed JSON");
    r->p++;
    return 1;
}

static int hex4(const char *s, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

static char *utf8(char *o, uint32_t c) {
    if (c < 0x80) *o++ = (char)c;
    else if (c < 0x800) *o++ = (char)(0xc0 | c >> 6), *o++ = (char)(0x80 | (c & 0x3f));
    else if (c < 0x10000)
        *o++ = (char)(0xe0 | c >> 12), *o++ = (char)(0x80 | (c >> 6 & 0x3f)), *o++ = (char)(0x80 | (c & 0x3f));
    else
        *o++ = (char)(0xf0 | c >> 18), *o++ = (char)(0x80 | (c >> 12 & 0x3f)),
        *o++ = (char)(0x80 | (c >> 6 & 0x3f)), *o++ = (char)(0x80 | (c & 0x3f));
    return o;
}

/* string reads a JSON string into a new NUL-terminated buffer, escapes
 * decoded (the decoded text is never longer than its JSON text). */
static int string(reader *r, char **out, int32_t *out_len) {
    if (!expect(r, '"')) return 0;
    const char *s = r->p, *q = s;
    while (q < r->end && *q != '"') q += *q == '\\' ? 2 : 1;
    char *buf = malloc((size_t)(q - s) + 1), *o = buf;
    if (!buf) return fail(r, "out of memory");
    for (;;) {
        if (s >= r->end) return fail(r, "unterminated string");
        unsigned char c = (unsigned char)*s++;
        if (c == '"') break;
        if (c < 0x20) return fail(r, "control character in a string");
        if (c != '\\') {
            *o++ = (char)c;
            continue;
        }
        if (s >= r->end) return fail(r, "unterminated string");
        switch (*s++) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            uint32_t u, lo;
            if (r->end - s < 4 || !hex4(s, &u)) return fail(r, "bad \\u escape");
            s += 4;
            if (u >= 0xd800 && u < 0xdc00 && r->end - s >= 6 && s[0] == '\\' && s[1] == 'u' && hex4(s + 2, &lo) &&
                lo >= 0xdc00 && lo < 0xe000) {
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                s += 6;
            } else if (u >= 0xd800 && u < 0xe000) {
                u = 0xfffd; /* a lone surrogate, as Go decodes it */
            }
            o = utf8(o, u);
            break;
        }
        default: return fail(r, "bad escape in a string");
        }
    }
    r->p = s;
    *o = 0;
    *out = buf, *out_len = (int32_t)(o - buf);
    return 1;
}

/* ---- checks, as the Go and Rust versions do them ---- */

static int valid_name(const char *n, int32_t len) {
    if (len == 0) return 0;
    for (int32_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)n[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) continue;
        if (!c || !strchr("!#$%&'*+-.^_`|~", c)) return 0;
    }
    return 1;
}

static int valid_value(const char *v, int32_t len) {
    for (int32_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < ' ' && c != '\t') || c == 0x7f) return 0;
    }
    return 1;
}

/* ---- the config's shape ---- */

/* A member of set or add, read in config order: a name and its values. */
typedef struct {
    char *name;
    int32_t name_len;
    char **values;
    int32_t *lens;
    int n;
} member;

typedef struct {
    char **remove;
    int32_t *remove_lens;
    int n_remove;
    member *set, *add;
    int n_set, n_add;
} rules;

/* strings reads a JSON array of strings. */
static int strings(reader *r, char ***out, int32_t **lens, int *n) {
    *out = NULL, *lens = NULL, *n = 0;
    if (peek(r) != '[') return fail(r, "want a list of strings");
    r->p++;
    if (peek(r) == ']') {
        r->p++;
        return 1;
    }
    for (;;) {
        if (peek(r) != '"') return fail(r, "want a list of strings");
        char **o = realloc(*out, (size_t)(*n + 1) * sizeof(char *));
        int32_t *l = realloc(*lens, (size_t)(*n + 1) * sizeof(int32_t));
        if (!o || !l) return fail(r, "out of memory");
        *out = o, *lens = l;
        if (!string(r, &o[*n], &l[*n])) return 0;
        (*n)++;
        int c = peek(r);
        r->p++;
        if (c == ']') return 1;
        if (c != ',') return fail(r, "malformed JSON");
    }
}

/* members reads a table of header = string or list of strings. */
static int members(reader *r, member **out, int *n) {
    *out = NULL, *n = 0;
    if (peek(r) != '{') return fail(r, "want a table of header = value");
    r->p++;
    if (peek(r) == '}') {
        r->p++;
        return 1;
    }
    for (;;) {
        member m = {0};
        if (!string(r, &m.name, &m.name_len) || !expect(r, ':')) return 0;
        if (peek(r) == '"') {
            m.values = malloc(sizeof(char *));
            m.lens = malloc(sizeof(int32_t));
            if (!m.values || !m.lens) return fail(r, "out of memory");
            if (!string(r, &m.values[0], &m.lens[0])) return 0;
            m.n = 1;
        } else if (peek(r) == '[') {
            if (!strings(r, &m.values, &m.lens, &m.n)) return 0;
        } else {
            return fail(r, "want a string or a list of strings");
        }
        member *o = realloc(*out, (size_t)(*n + 1) * sizeof(member));
        if (!o) return fail(r, "out of memory");
        *out = o;
        o[(*n)++] = m;
        int c = peek(r);
        r->p++;
        if (c == '}') return 1;
        if (c != ',') return fail(r, "malformed JSON");
    }
}

static int side(reader *r, rules *out) {
    memset(out, 0, sizeof *out);
    if (peek(r) != '{') return fail(r, "want a table with remove, set and add");
    r->p++;
    if (peek(r) == '}') {
        r->p++;
        return 1;
    }
    for (;;) {
        char *key;
        int32_t key_len;
        if (!string(r, &key, &key_len) || !expect(r, ':')) return 0;
        int ok;
        if (strcmp(key, "remove") == 0) ok = strings(r, &out->remove, &out->remove_lens, &out->n_remove);
        else if (strcmp(key, "set") == 0) ok = members(r, &out->set, &out->n_set);
        else if (strcmp(key, "add") == 0) ok = members(r, &out->add, &out->n_add);
        else ok = fail(r, "unknown key (want remove, set or add)");
        free(key);
        if (!ok) return 0;
        int c = peek(r);
        r->p++;
        if (c == '}') return 1;
        if (c != ',') return fail(r, "malformed JSON");
    }
}

/* compile turns one side's rules into ops: remove, then set, then add. */
static int compile(reader *r, rules *in, ops *o) {
    for (int i = 0; i < in->n_remove; i++) {
        if (!valid_name(in->remove[i], in->remove_lens[i])) return fail(r, "remove: invalid header name");
        if (!push(o, 'r', in->remove[i], in->remove_lens[i], NULL, 0)) return fail(r, "out of memory");
    }
    for (int pass = 0; pass < 2; pass++) {
        member *ms = pass == 0 ? in->set : in->add;
        int n = pass == 0 ? in->n_set : in->n_add;
        for (int i = 0; i < n; i++) {
            member *m = &ms[i];
            if (!valid_name(m->name, m->name_len)) return fail(r, pass == 0 ? "set: invalid header name" : "add: invalid header name");
            for (int j = 0; j < m->n; j++) {
                if (!valid_value(m->values[j], m->lens[j])) return fail(r, "invalid header value (control character)");
                char kind = pass == 0 && j == 0 ? 's' : 'a';
                if (!push(o, kind, m->name, m->name_len, m->values[j], m->lens[j])) return fail(r, "out of memory");
            }
        }
    }
    return 1;
}

static int parse(reader *r) {
    if (peek(r) != '{') return fail(r, "the config is not a table");
    r->p++;
    if (peek(r) != '}') {
        for (;;) {
            char *key;
            int32_t key_len;
            if (!string(r, &key, &key_len) || !expect(r, ':')) return 0;
            int which = strcmp(key, "request") == 0 ? 0 : strcmp(key, "response") == 0 ? 1 : -1;
            free(key);
            if (which < 0) return fail(r, "unknown key (want request or response)");
            rules rs;
            sides[which].n = 0; /* a repeated key: the last one counts */
            if (!side(r, &rs) || !compile(r, &rs, &sides[which])) return 0;
            int c = peek(r);
            r->p++;
            if (c == '}') break;
            if (c != ',') return fail(r, "malformed JSON");
        }
    } else {
        r->p++;
    }
    if (peek(r) != -1) return fail(r, "text after the config");
    return 1;
}

/* ---- the guest exports ---- */

EXPORT("sluice_abi_version") int32_t sluice_abi_version(void) { return 1; }

EXPORT("sluice_configure") int32_t sluice_configure(int32_t config_len) {
    char *cfg = malloc((size_t)config_len + 1);
    if (!cfg) return 1;
    int32_t n = host_get_config(cfg, config_len);
    if (n != config_len) return 1; /* the host announced its length */
    sides[0].n = sides[1].n = 0;
    reader r = {cfg, cfg + n, NULL};
    if (!parse(&r)) {
        static const char prefix[] = "headers: config: ";
        char msg[160];
        size_t lp = sizeof prefix - 1, le = strlen(r.err);
        if (le > sizeof msg - lp) le = sizeof msg - lp;
        memcpy(msg, prefix, lp);
        memcpy(msg + lp, r.err, le);
        host_log(LOG_ERROR, msg, (int32_t)(lp + le));
        return 1;
    }
    free(cfg); /* the ops hold copies of what they need */
    return 0;
}

EXPORT("sluice_hooks") int32_t sluice_hooks(void) {
    return (sides[0].n ? HOOK_REQUEST_HEADERS : 0) | (sides[1].n ? HOOK_RESPONSE_HEADERS : 0);
}

static void apply(int32_t kind, const ops *o) {
    for (int i = 0; i < o->n; i++) {
        const op *p = &o->ops[i];
        switch (p->kind) {
        case 'r': host_remove_header(kind, p->name, p->name_len); break;
        case 's': host_set_header(kind, p->name, p->name_len, p->value, p->value_len); break;
        case 'a': host_add_header(kind, p->name, p->name_len, p->value, p->value_len); break;
        }
    }
}

EXPORT("sluice_on_request_headers") int32_t sluice_on_request_headers(void) {
    apply(HEADER_REQUEST, &sides[0]);
    return 0;
}

EXPORT("sluice_on_response_headers") int32_t sluice_on_response_headers(void) {
    apply(HEADER_RESPONSE, &sides[1]);
    return 0;
}
