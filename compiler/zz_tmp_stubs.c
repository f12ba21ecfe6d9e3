/* commands that later commits of this series implement */
#include "commands.h"
int cmd_bench(const Options *o) { (void)o; diag_fatal("nnc bench: not available in this build yet"); return 1; }
