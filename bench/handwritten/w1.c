/* handwritten/w1.c: W1 by hand, the reference nnc's generated code is held to: linear regression
 * pred = w*x + b on 100k samples, full batch, mean squared error; one SGD step and one Adam step.
 * Plain C loops, built with cc -O2 -march=native like the generated code. The sums keep 16 partial
 * accumulators so the compiler can vectorize them without reassociation flags (what nnc's emitter does too).
 *
 * Cases (see ../worker.h): W1.sgd.train, W1.adam.train.
 */
#include "../worker.h"

#include <math.h>

#define N 100000
#define L 16

static const float *X, *Y;
static float w, b, mw, vw, mb, vb, loss;
static int t;

static void reset(void *p)
{
    (void)p;
    w = 0.5f, b = 0, mw = vw = mb = vb = 0, t = 0;
}

/* the loss and the gradients of w and b over the whole batch */
static void grad(float *gw, float *gb)
{
    float sw[L] = {0}, sb[L] = {0}, sl[L] = {0};
    int i = 0;
    for (; i + L <= N; i += L)
        for (int j = 0; j < L; j++) {
            float e = w * X[i + j] + b - Y[i + j];
            sw[j] += e * X[i + j];
            sb[j] += e;
            sl[j] += e * e;
        }
    for (; i < N; i++) {
        float e = w * X[i] + b - Y[i];
        sw[0] += e * X[i];
        sb[0] += e;
        sl[0] += e * e;
    }
    float a = 0, c = 0, l = 0;
    for (int j = 0; j < L; j++) a += sw[j], c += sb[j], l += sl[j];
    *gw = 2.0f / N * a;
    *gb = 2.0f / N * c;
    loss = l / N;
}

static void sgd_step(void *p)
{
    (void)p;
    float gw, gb;
    grad(&gw, &gb);
    w -= 0.1f * gw;
    b -= 0.1f * gb;
}

static void adam_step(void *p)
{
    (void)p;
    const float lr = 0.01f, b1 = 0.9f, b2 = 0.999f, eps = 1e-7f;
    float gw, gb;
    grad(&gw, &gb);
    t++;
    float c1 = 1 - powf(b1, (float)t), c2 = 1 - powf(b2, (float)t);
    mw = b1 * mw + (1 - b1) * gw, vw = b2 * vw + (1 - b2) * gw * gw;
    mb = b1 * mb + (1 - b1) * gb, vb = b2 * vb + (1 - b2) * gb * gb;
    w -= lr * (mw / c1) / (sqrtf(vw / c2) + eps);
    b -= lr * (mb / c1) / (sqrtf(vb / c2) + eps);
}

static const char *info(void)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "{\"loss\": %.6g}", (double)loss);
    return buf;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "bench/.data";
    char px[512], py[512];
    snprintf(px, sizeof px, "%s/w1_x.npy", dir);
    snprintf(py, sizeof py, "%s/w1_y.npy", dir);
    bw_array x, y;
    if (!bw_load_npy(px, &x) || !bw_load_npy(py, &y) || x.rows != N) return 1;
    X = x.data, Y = y.data;
    bw_case cases[] = {{"W1.sgd.train", sgd_step, reset, NULL, 0, 0}, {"W1.adam.train", adam_step, reset, NULL, 0, 0}};
    return bw_serve("handwritten", cases, 2, 0.3, info);
}
