/* optim.c: optimizer state and the parameter update of the train step (docs/language.md §6.9).
 *
 * optim_declare adds to the model, for every trainable parameter P, its gradient buffer (grad_P, in the
 * struct, not saved; not on firmware, where the update consumes each gradient as it is computed and no
 * buffer keeps it) and its optimizer state (saved, so training can resume): "opt.v.P" for sgd with
 * momentum, "opt.m.P" and "opt.v.P" for adam/adamw, "opt.s.P" for rmsprop; and the step counter
 * "opt.step". optim_apply writes the update formulas as ordinary ops:
 *   sgd     g += wd p; v = momentum v + g; p -= lr (nesterov ? g + momentum v : v)   (no v when momentum = 0)
 *   adam    m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 *           (computed as PyTorch does: (lr / (1-b1^t)) m / (sqrt(v) / sqrt(1-b2^t) + eps))
 *   adamw   adam, then p -= lr wd p_before
 *   rmsprop s = rho s + (1-rho) g^2; p -= lr g / (sqrt(s) + eps)
 */
#include "passes.h"

/* a name no tensor has yet: `base`, else base_2, base_3, ... (a layer may be called "opt" or "grad") */
static const char *unique_name_(Model *m, const char *base)
{
    const char *name = base;
    for (int k = 2; model_find_tensor(m, name) >= 0; k++) name = arena_printf(m->arena, "%s_%d", base, k);
    return name;
}

static void opt_state_(Model *m, const char *what, int param, int slot)
{
    Tensor *p = &m->tensors.data[param];
    Init z = {.kind = INIT_ZEROS};
    const char *name = unique_name_(m, arena_printf(m->arena, "opt.%s.%s", what, p->name));
    int t = model_add_tensor(m, name, TK_OPT, DT_F32, p->shape, z, p->loc);
    m->tensors.data[t].trainable = false;
    m->tensors.data[param].opt_state[slot] = t;
}

void optim_declare(Model *m, bool keep_grads)
{
    if (m->loss < 0 || m->opt.kind == OPT_NONE) return;
    int n = m->tensors.len;
    for (int i = 0; i < n; i++) {
        Tensor *p = &m->tensors.data[i];
        if (p->kind != TK_PARAM || !p->trainable) continue;
        if (keep_grads) {
            Init z = {.kind = INIT_ZEROS};
            const char *gname = unique_name_(m, arena_printf(m->arena, "grad.%s", p->name));
            int gt = model_add_tensor(m, gname, TK_GRAD, DT_F32, p->shape, z, p->loc);
            m->tensors.data[gt].trainable = false;
            m->tensors.data[i].grad = gt;
        }
        switch (m->opt.kind) {
        case OPT_SGD:
            if (m->opt.momentum != 0) opt_state_(m, "v", i, 0);
            break;
        case OPT_ADAM:
        case OPT_ADAMW:
            opt_state_(m, "m", i, 0);
            opt_state_(m, "v", i, 1);
            break;
        case OPT_RMSPROP: opt_state_(m, "s", i, 0); break;
        case OPT_NONE: break;
        }
    }
    Init z = {.kind = INIT_ZEROS};
    m->step_tensor = model_add_tensor(m, unique_name_(m, "opt.step"), TK_OPT, DT_I32, shape_scalar(), z, m->opt.loc);
    m->tensors.data[m->step_tensor].trainable = false;
}

typedef struct Upd {
    Graph *g;
    Model *m;
    Loc loc;
    int bc1, bc2; /* adam: lr / (1 - b1^t) and 1 / sqrt(1 - b2^t), shared by every parameter */
} Upd;

static int k_(Upd *u, double v) { return ir_scalar(u->g, v, u->loc); }
static int add_(Upd *u, int a, int b) { return ir_binary(u->g, OP_ADD, a, b, u->loc); }
static int sub_(Upd *u, int a, int b) { return ir_binary(u->g, OP_SUB, a, b, u->loc); }
static int mul_(Upd *u, int a, int b) { return ir_binary(u->g, OP_MUL, a, b, u->loc); }
static int div_(Upd *u, int a, int b) { return ir_binary(u->g, OP_DIV, a, b, u->loc); }

static int read_(Upd *u, int t)
{
    Tensor *x = &u->m->tensors.data[t];
    return graph_add_typed(u->g, OP_TENSOR, NULL, 0, NULL, x->dtype, x->shape, t, x->loc);
}

/* decayed average: rho s + (1 - rho) x, written back to the state tensor */
static int ema_(Upd *u, int t, double rho, int x)
{
    int s = add_(u, mul_(u, k_(u, rho), read_(u, t)), mul_(u, k_(u, 1 - rho), x));
    ir_assign(u->g, s, t, u->loc);
    return s;
}

static void update_param_(Upd *u, int t, int grad)
{
    Model *m = u->m;
    const Optimizer *o = &m->opt;
    int p = read_(u, t), g = grad, step;
    switch (o->kind) {
    case OPT_SGD: {
        if (o->weight_decay != 0) g = add_(u, g, mul_(u, k_(u, o->weight_decay), p));
        step = g;
        if (o->momentum != 0) {
            int vt = m->tensors.data[t].opt_state[0];
            int v = add_(u, mul_(u, k_(u, o->momentum), read_(u, vt)), g);
            ir_assign(u->g, v, vt, u->loc);
            step = o->nesterov ? add_(u, g, mul_(u, k_(u, o->momentum), v)) : v;
        }
        break;
    }
    case OPT_ADAM:
    case OPT_ADAMW: {
        /* as PyTorch computes it: (lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps), the scalars once per step */
        int mm = ema_(u, m->tensors.data[t].opt_state[0], o->beta1, g);
        int vv = ema_(u, m->tensors.data[t].opt_state[1], o->beta2, ir_unary(u->g, OP_SQUARE, g, u->loc));
        int den = add_(u, mul_(u, ir_unary(u->g, OP_SQRT, vv, u->loc), u->bc2), k_(u, o->epsilon));
        int np = sub_(u, p, mul_(u, u->bc1, div_(u, mm, den)));
        if (o->kind == OPT_ADAMW && o->weight_decay != 0) np = sub_(u, np, mul_(u, k_(u, o->lr * o->weight_decay), p));
        ir_assign(u->g, np, t, u->loc);
        return;
    }
    case OPT_RMSPROP: {
        int s = ema_(u, m->tensors.data[t].opt_state[0], o->rho, ir_unary(u->g, OP_SQUARE, g, u->loc));
        step = div_(u, g, add_(u, ir_unary(u->g, OP_SQRT, s, u->loc), k_(u, o->epsilon)));
        break;
    }
    default: NNC_UNREACHABLE();
    }
    int np = sub_(u, p, mul_(u, k_(u, o->lr), step));
    if (o->kind == OPT_ADAMW && o->weight_decay != 0) np = sub_(u, np, mul_(u, k_(u, o->lr * o->weight_decay), p));
    ir_assign(u->g, np, t, u->loc);
}

void optim_apply(Graph *g, const int *grads)
{
    Model *m = g->model;
    Upd u = {.g = g, .m = m, .loc = m->opt.loc};
    /* t = step + 1 */
    int32_t *one = arena_alloc(m->arena, sizeof(int32_t));
    *one = 1;
    Attr a = {.data = one};
    int k1 = graph_add_typed(g, OP_CONST, NULL, 0, &a, DT_I32, shape_scalar(), -1, u.loc);
    int t = ir_binary(g, OP_ADD, read_(&u, m->step_tensor), k1, u.loc);
    ir_assign(g, t, m->step_tensor, u.loc);
    if (m->opt.kind == OPT_ADAM || m->opt.kind == OPT_ADAMW) {
        /* bc1 holds lr / (1 - b1^t), bc2 holds 1 / sqrt(1 - b2^t): one scalar kernel each per step */
        int tf = ir_cast(g, t, DT_F32, u.loc);
        int c1 = sub_(&u, k_(&u, 1), ir_binary(g, OP_POW, k_(&u, m->opt.beta1), tf, u.loc));
        int c2 = sub_(&u, k_(&u, 1), ir_binary(g, OP_POW, k_(&u, m->opt.beta2), tf, u.loc));
        u.bc1 = div_(&u, k_(&u, m->opt.lr), c1);
        u.bc2 = div_(&u, k_(&u, 1), ir_unary(g, OP_SQRT, c2, u.loc));
    }
    for (int i = 0; i < m->tensors.len; i++) {
        Tensor *p = &m->tensors.data[i];
        if (p->kind != TK_PARAM || !p->trainable) continue;
        int gid = grads[i];
        if (gid < 0) gid = ir_const_filled(g, 0, p->shape, p->loc); /* not reached by the loss */
        if (p->grad >= 0) ir_assign(g, gid, p->grad, p->loc);
        update_param_(&u, i, gid);
    }
}
