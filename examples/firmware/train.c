/* train.c: learning on the device. Two models are trained for 3 steps of plain SGD at batch 1, one sample
 * from flash per step (train_data.c, written by make_data.py):
 *   ffn                   models/ffn.nn, the 10-50-1 network, on a synthetic regression, every
 *                         parameter trained (in RAM), from make_data.py's starting weights
 *   fashion_cnn_finetune  models/fashion_cnn_finetune.nn, the seed CNN with its convolution frozen (const,
 *                         in flash) and its dense layer trained (in RAM), from the seed CNN's trained
 *                         weights, on the first Fashion-MNIST training images of shirts (the class
 *                         it confuses most)
 * Both start from the weights compiled in (nnc_add_model's WEIGHTS). After each step it prints the step's
 * loss and the mean loss over the samples (falling); at the end it prints the parameters and writes them
 * to the host as <model>_device.safetensors, which tests/firmware compares with `nnc train` on the host. */
#include <stddef.h>
#include <stdint.h>

#include "board.h"
#include "fashion_cnn_finetune.h"
#include "ffn.h"

enum { SAMPLES = 3, STEPS = 3, FEATURES = 10, PIXELS = 28 * 28 };

extern const float ffn_x[SAMPLES * FEATURES], ffn_y[SAMPLES];
extern const uint8_t ft_images[SAMPLES * PIXELS], ft_labels[SAMPLES];

/* What the training loop needs of a model: one train step or one evaluation on sample i. */
typedef struct Learner {
    const char *name;
    void *model;
    size_t model_bytes;
    const nnc_tensor_info *tensors;
    int num_tensors;
    float (*step)(void *model, int i);
    float (*loss)(void *model, int i);
} Learner;

static ffn ffn_model;
static fashion_cnn_finetune cnn_model;

static float ffn_step_(void *m, int i)
{
    return ffn_train_step(m, 1, ffn_x + i * FEATURES, ffn_y + i);
}

static float ffn_loss_(void *m, int i)
{
    float metrics[FFN_NUM_METRICS + 1];
    return ffn_eval(m, 1, ffn_x + i * FEATURES, ffn_y + i, metrics);
}

/* The CNN's images are bytes in flash, scaled to [0,1] as `nnc train --data fashion-mnist` does. */
static float image_[PIXELS];
static int32_t label_;

static void load_image_(int i)
{
    for (int k = 0; k < PIXELS; k++) image_[k] = (float)ft_images[i * PIXELS + k] / 255.0f;
    label_ = ft_labels[i];
}

static float cnn_step_(void *m, int i)
{
    load_image_(i);
    return fashion_cnn_finetune_train_step(m, 1, image_, &label_);
}

static float cnn_loss_(void *m, int i)
{
    float metrics[FASHION_CNN_FINETUNE_NUM_METRICS + 1];
    load_image_(i);
    return fashion_cnn_finetune_eval(m, 1, image_, &label_, metrics);
}

static const float *tensor_values_(const Learner *l, const nnc_tensor_info *t)
{
    return t->data ? t->data : (const float *)((const char *)l->model + t->offset);
}

static int32_t tensor_count_(const nnc_tensor_info *t)
{
    int32_t count = 1;
    for (int d = 0; d < t->rank; d++) count *= t->shape[d];
    return count;
}

static int is_parameter_(const nnc_tensor_info *t)
{
    return t->kind == 0 && t->dtype == 0;
}

static float mean_loss_(const Learner *l)
{
    float sum = 0.0f;
    for (int i = 0; i < SAMPLES; i++) sum += l->loss(l->model, i);
    return sum / (float)SAMPLES;
}

/* "name [d0,d1]" into p */
static char *fmt_tensor_(char *p, const nnc_tensor_info *t)
{
    p = fmt_str(p, t->name);
    p = fmt_str(p, " [");
    for (int d = 0; d < t->rank; d++) {
        if (d) p = fmt_str(p, ",");
        p = fmt_int(p, t->shape[d]);
    }
    return fmt_str(p, "]");
}

/* The parameters as a safetensors file on the host: an 8-byte header length, the JSON header, the data. */
static int save_(const Learner *l, const char *path)
{
    static char header[2048];
    char *p = fmt_str(header, "{");
    uint32_t offset = 0;
    for (int k = 0; k < l->num_tensors; k++) {
        const nnc_tensor_info *t = &l->tensors[k];
        if (!is_parameter_(t)) continue;
        p = fmt_str(p, offset ? ",\"" : "\"");
        p = fmt_str(p, t->name);
        p = fmt_str(p, "\":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t->rank; d++) {
            if (d) p = fmt_str(p, ",");
            p = fmt_int(p, t->shape[d]);
        }
        p = fmt_str(p, "],\"data_offsets\":[");
        p = fmt_uint(p, offset);
        offset += (uint32_t)tensor_count_(t) * 4u;
        p = fmt_str(p, ",");
        p = fmt_uint(p, offset);
        p = fmt_str(p, "]}");
    }
    p = fmt_str(p, "}");
    while ((p - header) % 8) p = fmt_str(p, " ");
    const uint32_t length[2] = {(uint32_t)(p - header), 0};   /* little-endian uint64 */

    int file = board_create(path);
    if (file < 0) return 0;
    int ok = board_write(file, length, sizeof length) && board_write(file, header, length[0]);
    for (int k = 0; k < l->num_tensors && ok; k++)
        if (is_parameter_(&l->tensors[k]))
            ok = board_write(file, tensor_values_(l, &l->tensors[k]), (uint32_t)tensor_count_(&l->tensors[k]) * 4u);
    board_close(file);
    return ok;
}

static int run_(const Learner *l)
{
    char line[200], *p;
    int32_t trained = 0, frozen = 0;
    for (int k = 0; k < l->num_tensors; k++) {
        const nnc_tensor_info *t = &l->tensors[k];
        if (is_parameter_(t)) *(t->trainable ? &trained : &frozen) += tensor_count_(t);
    }
    p = fmt_str(line, "\n");
    p = fmt_str(p, l->name);
    p = fmt_str(p, ": ");
    p = fmt_int(p, trained);
    p = fmt_str(p, " parameters trained, ");
    p = fmt_int(p, frozen);
    p = fmt_str(p, " frozen; model struct ");
    p = fmt_uint(p, l->model_bytes);
    p = fmt_str(p, " bytes of RAM\nbefore    mean loss ");
    p = fmt_float(p, mean_loss_(l));
    p = fmt_str(p, "\n");
    board_puts(line);

    for (int s = 0; s < STEPS; s++) {
        uint64_t start = board_instructions();
        float loss = l->step(l->model, s % SAMPLES);
        uint64_t spent = board_instructions() - start;
        p = fmt_str(line, "step ");
        p = fmt_int(p, s + 1);
        p = fmt_str(p, "    mean loss ");
        p = fmt_float(p, mean_loss_(l));
        p = fmt_str(p, "  (step loss ");
        p = fmt_float(p, loss);
        p = fmt_str(p, ", ");
        p = fmt_uint(p, spent);
        p = fmt_str(p, " instructions)\n");
        board_puts(line);
    }

    for (int k = 0; k < l->num_tensors; k++) {
        const nnc_tensor_info *t = &l->tensors[k];
        if (!is_parameter_(t)) continue;
        const float *values = tensor_values_(l, t);
        int32_t count = tensor_count_(t);
        p = fmt_tensor_(fmt_str(line, "  "), t);
        p = fmt_str(p, t->trainable ? " trained" : " frozen");
        p = fmt_str(p, t->data ? ", in flash:" : ", in RAM:");
        for (int32_t i = 0; i < count && i < 4; i++) p = fmt_float(fmt_str(p, " "), values[i]);
        p = fmt_str(p, count > 4 ? " ...\n" : "\n");
        board_puts(line);
    }
    p = fmt_str(fmt_str(line, l->name), "_device.safetensors");
    if (!save_(l, line)) {
        board_puts("cannot write the weights on the host\n");
        return 0;
    }
    board_puts("  written to ");
    board_puts(line);
    board_puts("\n");
    return 1;
}

int main(void)
{
    const Learner ffn_learner = {
        "ffn", &ffn_model, sizeof ffn_model, ffn_tensors, ffn_num_tensors, ffn_step_, ffn_loss_,
    };
    const Learner cnn_learner = {
        "fashion_cnn_finetune", &cnn_model, sizeof cnn_model, fashion_cnn_finetune_tensors,
        fashion_cnn_finetune_num_tensors, cnn_step_, cnn_loss_,
    };

    board_puts("train: 3 steps of SGD at batch 1 on the device, one sample from flash each\n");
    ffn_init(&ffn_model, 0);
    fashion_cnn_finetune_init(&cnn_model, 0);
    return run_(&ffn_learner) && run_(&cnn_learner) ? 0 : 1;
}
