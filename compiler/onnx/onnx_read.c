/* onnx_read.c: an ONNX file, read as untrusted input. The bytes are protobuf: before protobuf-c unpacks them
 * (it recurses once per nesting level) a scan bounds how deeply the graph's recursive messages nest; then the
 * graph is checked: every name produced once, every input produced before it is used (nodes out of order are
 * sorted, a cycle is an error), external data files only from the model's own directory. */
#define _XOPEN_SOURCE 700 /* realpath, O_CLOEXEC */
#include "onnx_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* ---- unpacking within a memory budget ---------------------------------------------------------------------
 * protobuf-c allocates a struct per message and 8 bytes per packed element: 20 MB of empty NodeProtos took
 * 1.5 GB. Its allocations are counted against a budget of a few times the file (a model's bulk is raw tensor
 * data, copied once); past it an allocation fails and so does the unpack. The blocks are plain malloc'd ones,
 * so free_unpacked with the default allocator frees them. */
typedef struct Budget {
    size_t used, limit;
    bool exceeded;
} Budget;

static void *budget_alloc_(void *data, size_t size)
{
    Budget *b = data;
    if (size > b->limit - b->used) {
        b->exceeded = true;
        return NULL;
    }
    b->used += size;
    return malloc(size);
}

static void budget_free_(void *data, void *p)
{
    (void)data;
    free(p);
}

Onnx__ModelProto *onnx_read_model(const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    uint8_t *buf = read_all_(path, &len, err, errlen);
    if (!buf) return NULL;
    int scan = scan_(buf, buf + len, M_MODEL, 0);
    Budget budget = {0, 4 * len + ((size_t)256 << 20), false};
    ProtobufCAllocator alloc = {budget_alloc_, budget_free_, &budget};
    Onnx__ModelProto *m = scan ? NULL : onnx__model_proto__unpack(&alloc, len, buf);
    free(buf);
    if (scan == 2) {
        snprintf(err, errlen, "%s: its messages nest more than %d levels deep (graphs in nodes' attributes, or types)",
                 path, ONNX_MAX_NESTING);
        return NULL;
    }
    if (budget.exceeded) {
        snprintf(err, errlen, "%s: unpacking the model needs more than %zu MB for a %zu MB file; it is not a model "
                 "nnc reads", path, budget.limit >> 20, len >> 20);
        if (m) onnx__model_proto__free_unpacked(m, NULL);
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

/* ---- errors: a model's names and strings are shown with bytes outside printable ASCII as '?', so that a name
 * cannot write control sequences to the terminal or split a message's line ---------------------------------- */
void onnx_error(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    for (char *p = buf; *p; p++)
        if (*p < 32 || *p > 126) *p = '?';
    diag_fatal("%s", buf);
}

/* ---- the graph: names and order ------------------------------------------------------------------------ */
typedef struct NameSet {
    const char **names;
    int *producer; /* the node producing it, -1 for a graph input, -2 for an initializer */
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

/* ---- the order of the nodes: Kahn's, taking the lowest-numbered ready node first, so that a graph already in
 * order (as exporters write them) keeps it; O(E log N) whatever the file's order. -------------------------- */
typedef struct Heap {
    int *v;
    int n;
} Heap;

static void heap_push_(Heap *h, int x)
{
    int i = h->n++;
    for (; i > 0 && h->v[(i - 1) / 2] > x; i = (i - 1) / 2) h->v[i] = h->v[(i - 1) / 2];
    h->v[i] = x;
}

static int heap_pop_(Heap *h)
{
    int top = h->v[0], x = h->v[--h->n], i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && h->v[c + 1] < h->v[c]) c++;
        if (h->v[c] >= x) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = x;
    return top;
}

/* the node producing input j of node k, or -1 (a graph input, an initializer, an omitted optional input) */
static int producer_(const NameSet *s, const Onnx__NodeProto *n, size_t j)
{
    const char *in = n->input[j];
    return in && *in ? name_find_(s, in) : -1;
}

/* Names a node on a cycle: from a node left unsorted, follow unsorted producers; after n steps the walk is on
 * the cycle. */
static void report_cycle_(const char *path, const Onnx__GraphProto *g, const NameSet *s, const int *waiting)
{
    int n = (int)g->n_node, k = 0;
    while (k < n && !waiting[k]) k++;
    for (int step = 0; step < n; step++)
        for (size_t j = 0; j < g->node[k]->n_input; j++) {
            int p = producer_(s, g->node[k], j);
            if (p >= 0 && waiting[p]) {
                k = p;
                break;
            }
        }
    char lb[300];
    onnx_error("%s: the graph has a cycle: node %s depends on its own output", path,
               node_label_(g->node[k], k, lb, sizeof lb));
}

/* Sorts g's nodes so that each comes after the producers of its inputs; false (a node on a cycle named) when no
 * such order exists. */
static bool sort_nodes_(const char *path, Onnx__GraphProto *g, NameSet *s)
{
    int n = (int)g->n_node;
    size_t nedges = 0;
    for (int k = 0; k < n; k++) nedges += g->node[k]->n_input;
    int *waiting = calloc((size_t)n + 1, sizeof *waiting); /* inputs of node k not yet produced */
    int *first = calloc((size_t)n + 2, sizeof *first);    /* consumers of node p: next[first[p] .. first[p+1]) */
    int *next = malloc(sizeof *next * (nedges + 1)), *order = malloc(sizeof *order * ((size_t)n + 1));
    Heap ready = {malloc(sizeof(int) * ((size_t)n + 1)), 0};
    for (int k = 0; k < n; k++)
        for (size_t j = 0; j < g->node[k]->n_input; j++) {
            int p = producer_(s, g->node[k], j);
            if (p >= 0) first[p + 1]++, waiting[k]++;
        }
    for (int p = 0; p < n; p++) first[p + 1] += first[p];
    int *fill = calloc((size_t)n + 1, sizeof *fill);
    for (int k = 0; k < n; k++)
        for (size_t j = 0; j < g->node[k]->n_input; j++) {
            int p = producer_(s, g->node[k], j);
            if (p >= 0) next[first[p] + fill[p]++] = k;
        }
    for (int k = 0; k < n; k++)
        if (!waiting[k]) heap_push_(&ready, k);
    int norder = 0;
    while (ready.n) {
        int p = heap_pop_(&ready);
        order[norder++] = p;
        for (int e = first[p]; e < first[p + 1]; e++)
            if (--waiting[next[e]] == 0) heap_push_(&ready, next[e]);
    }
    bool ok = norder == n;
    if (!ok) report_cycle_(path, g, s, waiting);
    else if (n) { /* g->node is NULL in a graph without nodes */
        Onnx__NodeProto **sorted = malloc(sizeof *sorted * ((size_t)n + 1));
        for (int k = 0; k < n; k++) sorted[k] = g->node[order[k]];
        memcpy(g->node, sorted, sizeof *sorted * (size_t)n);
        free(sorted);
    }
    free(waiting);
    free(first);
    free(next);
    free(order);
    free(fill);
    free(ready.v);
    return ok;
}

bool onnx_check_graph(const char *path, Onnx__GraphProto *g, int opset)
{
    (void)opset; /* the checks are the same in every opset nnc reads */
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
        if (!nm || !*nm || !name_add_(&s, nm, -2)) {
            onnx_error("%s: initializer #%zu: %s", path, k, nm && *nm ? "its name is used twice" : "it has no name");
            ok = false;
        }
    }
    for (size_t k = 0; k < g->n_input; k++) {
        const char *nm = g->input[k]->name;
        if (!nm || !*nm) {
            onnx_error("%s: graph input #%zu has no name", path, k);
            ok = false;
        } else if (!name_add_(&s, nm, -1)) {
            /* IR < 4 lists initializers among the inputs too: a repeat of an initializer (-2) is fine */
            if (name_find_(&s, nm) != -2) {
                onnx_error("%s: graph input '%.200s' is declared twice", path, nm);
                ok = false;
            }
        }
    }
    for (size_t k = 0; k < g->n_node && ok; k++) {
        Onnx__NodeProto *n = g->node[k];
        if (!n->op_type || !*n->op_type) {
            onnx_error("%s: node %s has no op_type", path, node_label_(n, (int)k, lb, sizeof lb));
            ok = false;
        }
        for (size_t j = 0; j < n->n_output; j++) {
            const char *o = n->output[j];
            if (o && *o && !name_add_(&s, o, (int)k)) {
                onnx_error("%s: node %s: its output '%.200s' is also produced elsewhere", path,
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
                onnx_error("%s: node %s: input '%.200s' is not produced by any node, input or initializer", path,
                           node_label_(n, (int)k, lb, sizeof lb), in);
                ok = false;
            }
        }
    }
    for (size_t k = 0; k < g->n_output && ok; k++) {
        const char *nm = g->output[k]->name;
        if (!nm || name_find_(&s, nm) == INT_MIN) {
            onnx_error("%s: graph output '%.200s' is not produced by any node", path, nm ? nm : "");
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
    /* O_NONBLOCK: a FIFO placed beside the model must not block the open; it is refused as not regular */
    int fd = open(rfile, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "external data '%.200s': cannot read it (not a regular file)", loc);
        if (f) fclose(f);
        else if (fd >= 0) close(fd);
        return false;
    }
    if (length < 0) length = st.st_size - offset;
    if (offset < 0 || length < 0 || offset > st.st_size || length > st.st_size - offset || length > ONNX_MAX_FILE) {
        snprintf(err, errlen, "external data '%.200s': offset %lld and length %lld do not fit its %lld bytes", loc,
                 (long long)offset, (long long)length, (long long)st.st_size);
        fclose(f);
        return false;
    }
    if ((uint64_t)length != (uint64_t)*len) { /* before reading: the file may be large */
        snprintf(err, errlen, "external data '%.200s': %lld bytes for a shape that needs %zu", loc, (long long)length,
                 *len);
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
