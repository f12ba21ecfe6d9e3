/* handwritten/w2.c: W2 by hand, the reference nnc's generated code is held to: the 10-50-1 MLP (relu),
 * mean squared error, SGD(lr=0.01). One train step at batch 32 and at the full batch of 1000, and a predict
 * of one row. Plain C loops over static arrays, the innermost loop along the 50 hidden units (contiguous,
 * so -O2 -march=native vectorizes it); built like the generated code.
 *
 * Cases (see ../worker.h): W2.b32.train, W2.full.train, W2.predict1.
 */
#include "../worker.h"

#include <stdint.h>

#define IN 10
#define HID 50
#define MAXB 1000

static float W1[IN][HID], B1[HID], W2[HID], B2;
static float W1_0[IN][HID], W2_0[HID];
static float H[MAXB][HID], GH[MAXB][HID];
static float GW1[IN][HID], GB1[HID], GW2[HID];
static const float *X, *Y;
static float loss, out1;

static int next32;

static void reset(void *p)
{
    (void)p;
    next32 = 0;
    memcpy(W1, W1_0, sizeof W1);
    memcpy(W2, W2_0, sizeof W2);
    memset(B1, 0, sizeof B1);
    B2 = 0;
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
    const float lr = 0.01f;
    for (int k = 0; k < IN; k++)
        for (int j = 0; j < HID; j++) W1[k][j] -= lr * GW1[k][j];
    for (int j = 0; j < HID; j++) B1[j] -= lr * GB1[j], W2[j] -= lr * GW2[j];
    B2 -= lr * gb2;
}

/* batch 32 cycles through the data's first 31 batches (as nnc_timer.c and the peers do) */
static void train32(void *p)
{
    (void)p;
    train(32, X + next32 * 32 * IN, Y + next32 * 32);
    next32 = (next32 + 1) % (1000 / 32);
}
static void train1000(void *p) { (void)p, train(1000, X, Y); }

static void predict1(void *p)
{
    (void)p;
    forward(1, X);
    float pred = B2;
    for (int j = 0; j < HID; j++) pred += H[0][j] * W2[j];
    out1 = pred;
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
    snprintf(px, sizeof px, "%s/w2_x.npy", dir);
    snprintf(py, sizeof py, "%s/w2_y.npy", dir);
    bw_array x, y;
    if (!bw_load_npy(px, &x) || !bw_load_npy(py, &y) || x.rows < 1000 || x.per_row != IN) return 1;
    X = x.data, Y = y.data;
    uint64_t s = 1; /* glorot-uniform-ish initial weights; their values do not change the work */
    for (int k = 0; k < IN; k++)
        for (int j = 0; j < HID; j++) s = s * 6364136223846793005ull + 1, W1_0[k][j] = ((float)(s >> 40) / (1 << 24) - 0.5f) * 0.6f;
    for (int j = 0; j < HID; j++) s = s * 6364136223846793005ull + 1, W2_0[j] = ((float)(s >> 40) / (1 << 24) - 0.5f) * 0.6f;
    reset(NULL);
    bw_case cases[] = {{"W2.b32.train", train32, reset, NULL, 0, 0},
                       {"W2.full.train", train1000, reset, NULL, 0, 0},
                       {"W2.predict1", predict1, reset, NULL, 0, 0}};
    return bw_serve("handwritten", cases, 3, 0.3, info);
}
