#!/bin/sh
# tests/scale/gen.sh: writes a large model file to stdout, for bench/scale.sh and the scale tests.
#
#   tests/scale/gen.sh KIND N
#
# KIND (each model has one input x: f32[4] and one output):
#   rebind   N statements `h = relu(h)`: one name rebound N times (unique layer names h, h_2, h_3, ...)
#   names    N statements `vI = h + I`: N distinct names in one scope
#   consts   N statements `const cI = I`, then an output that uses the last one
#   layers   N statements `h = dense(h, 4)`: 2N parameters
#   defcalls N statements `h = blk(h)` calling a one-line def
#   freeze   N statements `lI = dense(x, 2)`, then `freeze l1, ..., lN` (was N x 2N name comparisons)
#   models   N models m1 ... mN in one file (duplicate names were found by comparing every pair)
#   defparams one def of N parameters (its duplicate parameters were found by comparing every pair)
#   expand   N defs `def hI(x) { return hJ(x) + hJ(x) }` (J = I+1) called once on a constant: 2^N calls
#            if each call is inlined anew (nnc must stop it with an error, not hang)
set -eu
kind=${1:?usage: gen.sh KIND N}
n=${2:?usage: gen.sh KIND N}
case $kind in
rebind | names | consts | layers | defcalls | freeze | models | defparams | expand) ;;
*) echo "gen.sh: unknown kind '$kind'" >&2; exit 2 ;;
esac
awk -v kind="$kind" -v n="$n" 'BEGIN {
    if (kind == "defcalls") print "def blk(x) {\n    return relu(x)\n}"
    if (kind == "expand") {
        for (i = 0; i < n; i++) printf "def h%d(x) { return h%d(x) + h%d(x) }\n", i, i + 1, i + 1
        printf "def h%d(x) { return x }\n", n
    }
    if (kind == "models") {
        for (i = 1; i <= n; i++) printf "model m%d { input x: f32[1]; output y = x }\n", i
        exit
    }
    if (kind == "defparams") {
        printf "def f(p1"
        for (i = 2; i <= n; i++) printf ", p%d", i
        print ") {\n    return p1\n}"
    }
    print "model scale {"
    print "    input x: f32[4]"
    print "    h = x"
    for (i = 1; i <= n && kind != "expand" && kind != "defparams"; i++) {
        if (kind == "rebind") print "    h = relu(h)"
        else if (kind == "names") printf "    v%d = h + %d\n", i, i
        else if (kind == "consts") printf "    const c%d = %d\n", i, i
        else if (kind == "layers") print "    h = dense(h, 4)"
        else if (kind == "freeze") printf "    l%d = dense(x, 2)\n", i
        else print "    h = blk(h)"
    }
    if (kind == "freeze") {
        printf "    freeze l1"
        for (i = 2; i <= n; i++) printf ", l%d", i
        print ""
    }
    if (kind == "names") printf "    h = v%d\n", n
    if (kind == "consts") printf "    h = h * c%d\n", n
    if (kind == "expand") print "    h = h * h0(1)"
    if (kind == "defparams") print "    h = f(h)"
    print "    output y = h"
    print "}"
}'
