/* handwritten/w4.c: W4 by hand, the reference nnc's generated code is held to: the 10-64-1 MLP (relu),
 * mean squared error, Adam(lr=0.001, epsilon=1e-7), one train step at batch 32. The same loops as w2.c, with
 * the Adam update written out; built like the generated code.
 *
 * Case (see ../worker.h): W4.train.
 */
#include "../worker.h"

#include <math.h>
#include <stdint.h>

#define IN 10
#define HID 64
#define MAXB 32

static float W1[IN][HID], B1[HID], W2[HID], B2;
static float W1_0[IN][HID], W2_0[HID];
/* Adam moments, in the same order as the parameters */
static float M1[IN][HID], V1[IN][HID], MB1[HID], VB1[HID], M2[HID], V2[HID], MB2, VB2;
static int T;
static float H[MAXB][HID], GH[MAXB][HID];
static float GW1[IN][HID], GB1[HID], GW2[HID];
static const float *X, *Y;
static float loss;

static int next32;

static void reset(void *p)
{
    (void)p;
    next32 = 0;
    memcpy(W1, W1_0, sizeof W1);
    memcpy(W2, W2_0, sizeof W2);
    memset(B1, 0, sizeof B1);
    B2 = 0;
    memset(M1, 0, sizeof M1), memset(V1, 0, sizeof V1), memset(MB1, 0, sizeof MB1), memset(VB1, 0, sizeof VB1);
    memset(M2, 0, sizeof M2), memset(V2, 0, sizeof V2), MB2 = VB2 = 0, T = 0;
}

/* p -= lr * mhat / (sqrt(vhat) + eps) over n values */
static void adam(float *p, const float *g, float *m, float *v, int n, float a, float c2)
{
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-7f;
    for (int i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
        p[i] -= a * m[i] / (sqrtf(v[i] / c2) + eps);
    }
}

static void forward(int n, const float *x)
{
    for (int i = 0; i < n; i++) {
        float *h = H[i];
        for (int j = 0; j < HID; j++) h[j] = B1[j];
        for (int k = 0; k < IN; k++) {
            float a = x[i * IN + k];
            for (int j = 0; j < HID; j++) h[j] += a * W1[k][j];
        }
        for (int j = 0; j < HID; j++) h[j] = h[j] > 0 ? h[j] : 0;
    }
}

static void train(int n, const float *X, const float *Y)
{
    forward(n, X);
    float l = 0, gb2 = 0;
    memset(GW2, 0, sizeof GW2);
    memset(GB1, 0, sizeof GB1);
    for (int i = 0; i < n; i++) { /* output layer and the hidden layer's error */
        float pred = B2;
        for (int j = 0; j < HID; j++) pred += H[i][j] * W2[j];
        float e = pred - Y[i];
        l += e * e;
        float d = 2.0f / n * e;
        gb2 += d;
        for (int j = 0; j < HID; j++) {
            GW2[j] += d * H[i][j];
            float g = H[i][j] > 0 ? d * W2[j] : 0;
            GB1[j] += g;
            GH[i][j] = g;
        }
    }
    for (int k = 0; k < IN; k++) { /* GW1 = X^T GH, one row of GW1 at a time */
        float *gw = GW1[k];
        for (int j = 0; j < HID; j++) gw[j] = 0;
        for (int i = 0; i < n; i++) {
            float a = X[i * IN + k];
            for (int j = 0; j < HID; j++) gw[j] += a * GH[i][j];
        }
    }
    loss = l / n;
    T++;
    const float lr = 0.001f, c1 = 1 - powf(0.9f, (float)T), c2 = 1 - powf(0.999f, (float)T), a = lr / c1;
    adam(&W1[0][0], &GW1[0][0], &M1[0][0], &V1[0][0], IN * HID, a, c2);
    adam(B1, GB1, MB1, VB1, HID, a, c2);
    adam(W2, GW2, M2, V2, HID, a, c2);
    adam(&B2, &gb2, &MB2, &VB2, 1, a, c2);
}

/* batch 32 cycles through the data's first 31 batches (as nnc_timer.c and the peers do) */
static void train32(void *p)
{
    (void)p;
    train(32, X + next32 * 32 * IN, Y + next32 * 32);
    next32 = (next32 + 1) % (1000 / 32);
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
    snprintf(px, sizeof px, "%s/w4_x.npy", dir);
    snprintf(py, sizeof py, "%s/w4_y.npy", dir);
    bw_array x, y;
    if (!bw_load_npy(px, &x) || !bw_load_npy(py, &y) || x.rows < 1000 || x.per_row != IN) return 1;
    X = x.data, Y = y.data;
    uint64_t s = 1; /* glorot-uniform-ish initial weights; their values do not change the work */
    for (int k = 0; k < IN; k++)
        for (int j = 0; j < HID; j++) s = s * 6364136223846793005ull + 1, W1_0[k][j] = ((float)(s >> 40) / (1 << 24) - 0.5f) * 0.6f;
    for (int j = 0; j < HID; j++) s = s * 6364136223846793005ull + 1, W2_0[j] = ((float)(s >> 40) / (1 << 24) - 0.5f) * 0.6f;
    reset(NULL);
    bw_case cases[] = {{"W4.train", train32, reset, NULL, 0, 0}};
    return bw_serve("handwritten", cases, 1, 0.3, info);
}
