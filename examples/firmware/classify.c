/* classify.c: the seed CNN (models/fashion_cnn.nn, trained on the host at build time) classifies the first
 * 100 Fashion-MNIST test images on the device. The images are bytes in flash (test_images.c, written by
 * make_data.py), scaled to [0,1] one at a time as `nnc train --data fashion-mnist` scales them; the
 * weights are const arrays in flash, read in place; RAM holds only the model struct (its scratch arena)
 * and one image. Prints each prediction, the accuracy and the instructions per predict, and writes the
 * probabilities to the host as classify_probs.npy, which tests/firmware compares with `nnc predict`. */
#include <stdint.h>

#include "board.h"
#include "fashion_cnn.h"

enum { IMAGES = 100, PIXELS = 28 * 28, CLASSES = 10 };

extern const uint8_t test_images[IMAGES * PIXELS], test_labels[IMAGES];

static const char *const class_names[CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
};

static fashion_cnn model;
static float probs[IMAGES][CLASSES];

static int argmax_(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* probs as a [IMAGES, CLASSES] float32 .npy file on the host: format 1.0, a 128-byte header */
static int save_probs_(const char *path)
{
    char header[128] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (100, 10), }";
    for (int i = 72; i < 127; i++) header[i] = ' ';
    header[127] = '\n';
    int file = board_create(path);
    if (file < 0) return 0;
    int ok = board_write(file, header, sizeof header) && board_write(file, probs, sizeof probs);
    board_close(file);
    return ok;
}

int main(void)
{
    char line[160], *p;
    static float image[PIXELS];
    uint64_t total = 0, fewest = UINT64_MAX, most = 0;
    int correct = 0;

    fashion_cnn_init(&model, 0);
    board_puts("classify: fashion_cnn on the first 100 Fashion-MNIST test images, weights and images in flash\n");
    for (int i = 0; i < IMAGES; i++) {
        for (int k = 0; k < PIXELS; k++) image[k] = (float)test_images[i * PIXELS + k] / 255.0f;
        uint64_t start = board_instructions();
        fashion_cnn_predict(&model, 1, image, probs[i]);
        uint64_t spent = board_instructions() - start;
        total += spent;
        fewest = spent < fewest ? spent : fewest;
        most = spent > most ? spent : most;

        int predicted = argmax_(probs[i], CLASSES), label = test_labels[i];
        correct += predicted == label;
        p = fmt_str(line, "image ");
        p = fmt_uint(p, (uint64_t)i);
        p = fmt_str(p, i < 10 ? "   predicted " : "  predicted ");
        p = fmt_uint(p, (uint64_t)predicted);
        p = fmt_str(p, " ");
        p = fmt_str(p, class_names[predicted]);
        p = fmt_str(p, " (");
        p = fmt_float(p, probs[i][predicted]);
        p = fmt_str(p, ")  label ");
        p = fmt_uint(p, (uint64_t)label);
        p = fmt_str(p, predicted == label ? "\n" : "  <- wrong\n");
        board_puts(line);
    }

    p = fmt_str(line, "accuracy ");
    p = fmt_float(p, (float)correct / (float)IMAGES);
    p = fmt_str(p, " (");
    p = fmt_uint(p, (uint64_t)correct);
    p = fmt_str(p, " of 100)\ninstructions per predict: ");
    p = fmt_uint(p, total / IMAGES);
    p = fmt_str(p, " (fewest ");
    p = fmt_uint(p, fewest);
    p = fmt_str(p, ", most ");
    p = fmt_uint(p, most);
    p = fmt_str(p, ")\n");
    board_puts(line);
    if (!save_probs_("classify_probs.npy")) {
        board_puts("cannot write classify_probs.npy on the host\n");
        return 1;
    }
    board_puts("probabilities written to classify_probs.npy\n");
    return 0;
}
