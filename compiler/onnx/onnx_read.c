/* onnx_read.c: an ONNX file, read as untrusted input. The bytes are protobuf: before protobuf-c unpacks them
 * (it recurses once per nesting level) a scan bounds how deeply the graph's recursive messages nest; then the
 * graph is checked: every name produced once, every input produced before it is used (nodes out of order are
 * sorted, a cycle is an error), external data files only from the model's own directory. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "onnx_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { ONNX_MAX_FILE = 1 << 30, ONNX_MAX_NESTING = 64 };

/* ---- the nesting scan ----------------------------------------------------------------------------------
 * Only messages that can contain themselves are followed: a graph's nodes, a node's attributes, an attribute's
 * graphs, a function's nodes, and the TypeProto family. Every other sub-message is a leaf of bounded depth. */
typedef enum Msg { M_LEAF, M_MODEL, M_GRAPH, M_NODE, M_ATTR, M_FUNC, M_TRAIN, M_VALUEINFO, M_TYPE, M_TYPE_ELEM } Msg;

static Msg child_msg_(Msg parent, uint64_t field)
{
    switch (parent) {
    case M_MODEL: return field == 7 ? M_GRAPH : field == 20 ? M_TRAIN : field == 25 ? M_FUNC : M_LEAF;
    case M_GRAPH: return field == 1 ? M_NODE : (field >= 11 && field <= 13) ? M_VALUEINFO : M_LEAF;
    case M_NODE: return field == 5 ? M_ATTR : M_LEAF;
    case M_ATTR: return field == 6 || field == 11 ? M_GRAPH : field == 14 || field == 15 ? M_TYPE : M_LEAF;
    case M_FUNC: return field == 7 ? M_NODE : field == 11 ? M_ATTR : field == 12 ? M_VALUEINFO : M_LEAF;
    case M_TRAIN: return field == 1 || field == 2 ? M_GRAPH : M_LEAF;
    case M_VALUEINFO: return field == 2 ? M_TYPE : M_LEAF;
    case M_TYPE: return field == 4 || field == 5 || field == 9 ? M_TYPE_ELEM : M_LEAF;
    case M_TYPE_ELEM: return field == 1 || field == 2 ? M_TYPE : M_LEAF; /* sequence/optional elem_type, map value_type */
    case M_LEAF: break;
    }
    return M_LEAF;
}

static bool varint_(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

/* 0: fine; 1: malformed; 2: nested too deeply */
static int scan_(const uint8_t *p, const uint8_t *end, Msg m, int depth)
{
    if (depth > ONNX_MAX_NESTING) return 2;
    while (p < end) {
        uint64_t key, v;
        if (!varint_(&p, end, &key)) return 1;
        switch (key & 7) {
        case 0:
            if (!varint_(&p, end, &v)) return 1;
            break;
        case 1:
            if (end - p < 8) return 1;
            p += 8;
            break;
        case 5:
            if (end - p < 4) return 1;
            p += 4;
            break;
        case 2: {
            if (!varint_(&p, end, &v) || v > (uint64_t)(end - p)) return 1;
            Msg child = child_msg_(m, key >> 3);
            if (child != M_LEAF) {
                int r = scan_(p, p + v, child, depth + 1);
                if (r) return r;
            }
            p += v;
            break;
        }
        default: return 1; /* groups (3, 4) are not in ONNX's schema */
        }
    }
    return 0;
}

static uint8_t *read_all_(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        fclose(f);
        return NULL;
    }
    if (st.st_size > ONNX_MAX_FILE) {
        snprintf(err, errlen, "%s: %lld bytes; ONNX models larger than 1 GiB keep their weights in external data files",
                 path, (long long)st.st_size);
        fclose(f);
        return NULL;
    }
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    size_t got = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!buf || got != (size_t)st.st_size) {
        snprintf(err, errlen, "%s: cannot read the file", path);
        free(buf);
        return NULL;
    }
    *len = got;
    return buf;
}

Onnx__ModelProto *onnx_read_model(const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    uint8_t *buf = read_all_(path, &len, err, errlen);
    if (!buf) return NULL;
    int scan = scan_(buf, buf + len, M_MODEL, 0);
    Onnx__ModelProto *m = scan ? NULL : onnx__model_proto__unpack(NULL, len, buf);
    free(buf);
    if (scan == 2) {
        snprintf(err, errlen, "%s: graphs nest more than %d levels deep", path, ONNX_MAX_NESTING);
        return NULL;
    }
    if (!m) {
        snprintf(err, errlen, "%s: not an ONNX model (the file is not a protobuf ModelProto, or it is truncated)", path);
        return NULL;
    }
    if (!m->graph || (!m->has_ir_version && m->n_opset_import == 0)) {
        snprintf(err, errlen, "%s: not an ONNX model (no graph%s)", path, m->graph ? " version" : "");
        onnx__model_proto__free_unpacked(m, NULL);
        return NULL;
    }
    return m;
}

int onnx_model_opset(const Onnx__ModelProto *m, const char *domain)
{
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const char *d = m->opset_import[i]->domain ? m->opset_import[i]->domain : "";
        bool default_domain = !*domain && (!*d || str_eq(d, "ai.onnx"));
        if ((default_domain || str_eq(d, domain)) && m->opset_import[i]->has_version)
            return m->opset_import[i]->version > INT_MAX ? INT_MAX : (int)m->opset_import[i]->version;
    }
    return m->n_opset_import == 0 && !*domain ? 1 : 0; /* IR version 2 models name no opset: 1 */
}

/* ---- the graph: names and order ------------------------------------------------------------------------ */
typedef struct NameSet {
    const char **names;
    int *producer; /* the node producing it, -1 for a graph input or initializer */
    int n, cap;    /* open addressing; cap a power of two */
} NameSet;

static int name_slot_(const NameSet *s, const char *name)
{
    uint64_t h = str_hash(name);
    for (int i = (int)(h & (uint64_t)(s->cap - 1));; i = (i + 1) & (s->cap - 1))
        if (!s->names[i] || str_eq(s->names[i], name)) return i;
}

static int name_find_(const NameSet *s, const char *name)
{
    int i = name_slot_(s, name);
    return s->names[i] ? s->producer[i] : INT_MIN;
}

static bool name_add_(NameSet *s, const char *name, int producer)
{
    int i = name_slot_(s, name);
    if (s->names[i]) return false;
    s->names[i] = name;
    s->producer[i] = producer;
    s->n++;
    return true;
}

static const char *node_label_(const Onnx__NodeProto *n, int k, char *buf, size_t len)
{
    if (n->name && *n->name)
        snprintf(buf, len, "'%.200s' (%.60s)", n->name, n->op_type ? n->op_type : "?");
    else
        snprintf(buf, len, "#%d (%.60s)", k, n->op_type ? n->op_type : "?");
    return buf;
}

/* Kahn's order over the nodes; false (and the first node on a cycle named) when there is none */
static bool sort_nodes_(const char *path, Onnx__GraphProto *g, NameSet *s)
{
    int n = (int)g->n_node;
    int *waiting = calloc((size_t)n + 1, sizeof *waiting), *order = calloc((size_t)n + 1, sizeof *order);
    bool *done = calloc((size_t)n + 1, sizeof *done);
    int norder = 0;
    bool progress = true;
    /* a simple repeated sweep: fine for graphs as exported (already sorted: one sweep) */
    while (progress && norder < n) {
        progress = false;
        for (int k = 0; k < n; k++) {
            if (done[k]) continue;
            bool ready = true;
            for (size_t j = 0; j < g->node[k]->n_input && ready; j++) {
                const char *in = g->node[k]->input[j];
                if (!in || !*in) continue;
                int p = name_find_(s, in);
                ready = p < 0 || done[p];
            }
            if (ready) {
                done[k] = true;
                order[norder++] = k;
                progress = true;
            }
        }
    }
    bool ok = norder == n;
    if (!ok) {
        char lb[300];
        for (int k = 0; k < n; k++)
            if (!done[k]) {
                diag_fatal("%s: the graph has a cycle: node %s depends on its own output", path,
                           node_label_(g->node[k], k, lb, sizeof lb));
                break;
            }
    } else {
        Onnx__NodeProto **sorted = malloc(sizeof *sorted * ((size_t)n + 1));
        for (int k = 0; k < n; k++) sorted[k] = g->node[order[k]];
        memcpy(g->node, sorted, sizeof *sorted * (size_t)n);
        free(sorted);
    }
    (void)waiting;
    free(waiting);
    free(order);
    free(done);
    return ok;
}

bool onnx_check_graph(const char *path, Onnx__GraphProto *g, int opset)
{
    size_t total = g->n_input + g->n_initializer;
    for (size_t k = 0; k < g->n_node; k++) total += g->node[k]->n_output;
    NameSet s = {.cap = 16};
    while ((size_t)s.cap < 2 * total + 2) s.cap *= 2;
    s.names = calloc((size_t)s.cap, sizeof *s.names);
    s.producer = calloc((size_t)s.cap, sizeof *s.producer);
    bool ok = true;
    char lb[300];
    for (size_t k = 0; k < g->n_initializer; k++) {
        const char *nm = g->initializer[k]->name;
        if (!nm || !*nm || !name_add_(&s, nm, -1)) {
            diag_fatal("%s: initializer #%zu: %s", path, k, nm && *nm ? "its name is used twice" : "it has no name");
            ok = false;
        }
    }
    for (size_t k = 0; k < g->n_input; k++) {
        const char *nm = g->input[k]->name;
        if (!nm || !*nm) {
            diag_fatal("%s: graph input #%zu has no name", path, k);
            ok = false;
        } else if (!name_add_(&s, nm, -1) && opset >= 0) {
            /* IR < 4 lists initializers among the inputs too: a repeat of an initializer is fine */
            bool is_init = false;
            for (size_t j = 0; j < g->n_initializer; j++) is_init |= str_eq(g->initializer[j]->name, nm);
            if (!is_init) {
                diag_fatal("%s: graph input '%.200s' is declared twice", path, nm);
                ok = false;
            }
        }
    }
    for (size_t k = 0; k < g->n_node && ok; k++) {
        Onnx__NodeProto *n = g->node[k];
        if (!n->op_type || !*n->op_type) {
            diag_fatal("%s: node %s has no op_type", path, node_label_(n, (int)k, lb, sizeof lb));
            ok = false;
        }
        for (size_t j = 0; j < n->n_output; j++) {
            const char *o = n->output[j];
            if (o && *o && !name_add_(&s, o, (int)k)) {
                diag_fatal("%s: node %s: its output '%.200s' is also produced elsewhere", path,
                           node_label_(n, (int)k, lb, sizeof lb), o);
                ok = false;
            }
        }
    }
    for (size_t k = 0; k < g->n_node && ok; k++) {
        Onnx__NodeProto *n = g->node[k];
        for (size_t j = 0; j < n->n_input; j++) {
            const char *in = n->input[j];
            if (in && *in && name_find_(&s, in) == INT_MIN) {
                diag_fatal("%s: node %s: input '%.200s' is not produced by any node, input or initializer", path,
                           node_label_(n, (int)k, lb, sizeof lb), in);
                ok = false;
            }
        }
    }
    for (size_t k = 0; k < g->n_output && ok; k++) {
        const char *nm = g->output[k]->name;
        if (!nm || name_find_(&s, nm) == INT_MIN) {
            diag_fatal("%s: graph output '%.200s' is not produced by any node", path, nm ? nm : "");
            ok = false;
        }
    }
    if (ok) ok = sort_nodes_(path, g, &s);
    free(s.names);
    free(s.producer);
    return ok;
}

/* ---- external data ---------------------------------------------------------------------------------------
 * `location` is relative to the model's directory and must stay inside it: no absolute path, no "..", and
 * the resolved file (symlinks followed) must lie in the resolved directory. */
static bool location_plain_(const char *loc)
{
    if (!*loc || loc[0] == '/') return false;
    for (const char *p = loc; *p;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if ((len == 2 && p[0] == '.' && p[1] == '.') || len == 0) return false;
        p += len + (slash ? 1 : 0);
    }
    return !strchr(loc, '\\');
}

bool onnx_tensor_external(const char *model_path, const Onnx__TensorProto *t, uint8_t **data, size_t *len,
                          char *err, size_t errlen)
{
    const char *loc = NULL;
    int64_t offset = 0, length = -1;
    for (size_t k = 0; k < t->n_external_data; k++) {
        const Onnx__StringStringEntryProto *e = t->external_data[k];
        if (!e->key || !e->value) continue;
        if (str_eq(e->key, "location")) loc = e->value;
        if (str_eq(e->key, "offset")) offset = strtoll(e->value, NULL, 10);
        if (str_eq(e->key, "length")) length = strtoll(e->value, NULL, 10);
    }
    if (!loc || !location_plain_(loc)) {
        snprintf(err, errlen, "external data location '%.200s': only files in the model's own directory are read",
                 loc ? loc : "(none)");
        return false;
    }
    char dir[PATH_MAX], file[PATH_MAX * 2], rdir[PATH_MAX], rfile[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", model_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[1] = 0;
    else
        snprintf(dir, sizeof dir, "./");
    snprintf(file, sizeof file, "%s%s", dir, loc);
    if (!realpath(dir, rdir) || !realpath(file, rfile)) {
        snprintf(err, errlen, "external data '%.200s': %s", loc, strerror(errno));
        return false;
    }
    size_t dl = strlen(rdir);
    if (strncmp(rfile, rdir, dl) != 0 || rfile[dl] != '/') {
        snprintf(err, errlen, "external data '%.200s' lies outside the model's directory", loc);
        return false;
    }
    FILE *f = fopen(rfile, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "external data '%.200s': cannot read it", loc);
        if (f) fclose(f);
        return false;
    }
    if (length < 0) length = st.st_size - offset;
    if (offset < 0 || length < 0 || offset > st.st_size || length > st.st_size - offset || length > ONNX_MAX_FILE) {
        snprintf(err, errlen, "external data '%.200s': offset %lld and length %lld do not fit its %lld bytes", loc,
                 (long long)offset, (long long)length, (long long)st.st_size);
        fclose(f);
        return false;
    }
    uint8_t *buf = malloc((size_t)length + 1);
    bool ok = buf && fseek(f, (long)offset, SEEK_SET) == 0 && fread(buf, 1, (size_t)length, f) == (size_t)length;
    fclose(f);
    if (!ok) {
        free(buf);
        snprintf(err, errlen, "external data '%.200s': cannot read %lld bytes", loc, (long long)length);
        return false;
    }
    *data = buf;
    *len = (size_t)length;
    return true;
}
