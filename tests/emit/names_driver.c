/* names_driver.c: prints each name in model m's tensor table, then each metric name, as hex bytes, one a
 * line, so that a test can compare them byte for byte with the names the model file gave.
 * Built with the generated C: cc -DMODEL_H='"m.h"' names_driver.c m.c */
#include MODEL_H

#include <stdio.h>

static void hex_(const char *s)
{
    for (; *s; s++) printf("%02x", (unsigned)(unsigned char)*s);
    printf("\n");
}

int main(void)
{
    for (int i = 0; m_tensors[i].name; i++) hex_(m_tensors[i].name);
    for (int i = 0; m_metric_names[i]; i++) hex_(m_metric_names[i]);
    return 0;
}
