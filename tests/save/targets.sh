#!/bin/sh
# targets.sh: where nnc's files go when the path is not a plain file (runtime/atomic_file.c).
#
#   tests/save/targets.sh path/to/nnc
#
# nnc writes checkpoints (train --save), predictions (predict -o) and C (compile -o) by atomic replacement,
# which must not turn a device, a FIFO or a symlink into a regular file (as root this once replaced the real
# /dev/null). The device nodes here are copies of /dev/null and /dev/full made with mknod in a scratch
# directory, so a wrong nnc destroys only the copy; where mknod is not allowed those checks are skipped.
#   devices   train --save, predict -o, compile -o into "null": exit 0, still a character device;
#             into "full": exit 1 naming the file and ENOSPC, still a character device
#   symlinks  --save through a chain of links: the links stay links, the file at the end is the checkpoint
#             (the same bytes as a plain --save); a link to the device writes the device
#   FIFO      predict -o FIFO with a reader: the reader gets the .npy, the FIFO stays a FIFO
#   /proc     predict -o /proc/self/fd/1 > FILE: FILE gets the .npy
# and no .nnc-tmp. temporary is left anywhere. Prints each failure; exits 0 when all pass.
set -u
here=$(cd "$(dirname "$0")" && pwd)
nnc=${1:?usage: targets.sh path/to/nnc}
case $nnc in /*) ;; *) nnc=$(pwd)/$nnc ;; esac
[ -x "$nnc" ] || { echo "targets.sh: no nnc at $nnc" >&2; exit 2; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nnc_save_targets.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
pass=0 fail=0 skipped=0
err=$tmp/stderr

# run ARGS...: nnc in tests/save (diagnostics name the files as given); sets $rc.
run() {
    (cd "$here" && timeout 60 "$nnc" "$@" 2>"$err")
    rc=$?
    cmdline="nnc $*"
}
# check DESCRIPTION TEST...: the shell test (e.g. -c FILE) must hold.
check() {
    desc=$1
    shift
    if [ "$@" ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL  $desc: $cmdline (exit $rc), unmet: [ $* ]"
        sed 's/^/    stderr: /' "$err" | head -n 6
    fi
}
ok() { check "$1 exits 0" "$rc" -eq 0; }
same() { cmp -s "$1" "$2" && echo same; }
train() { run train tiny.nn --data x=x.csv --data y=y.csv --seed 1 --quiet -O0 "$@"; }
predict() { run predict tiny.nn --weights "$tmp/ref.safetensors" --data x=x.csv -O0 "$@"; }

# ---- references: plain files ----------------------------------------------------------------------------
train --save "$tmp/ref.safetensors"
ok "reference checkpoint"
predict -o "$tmp/ref.npy"
ok "reference prediction"
run compile tiny.nn -o "$tmp/ref.c"
ok "reference C"

# ---- devices -------------------------------------------------------------------------------------------
# mkdev NAME MODEL: a character device in $tmp with MODEL's numbers; fails where mknod or nodev forbid it
mkdev() {
    # shellcheck disable=SC2012 # ls -l is the portable way to the major, minor numbers
    set -- "$1" "$(ls -lL "$2" 2>/dev/null | awk '{ sub(",", "", $5); print $5, $6 }')"
    [ -n "$2" ] && mknod "$tmp/$1" c $2 2>/dev/null && : 2>/dev/null >"$tmp/$1"
}
if mkdev null /dev/null; then
    train --save "$tmp/null"
    ok "train --save into a device"
    check "train --save leaves the device a device" -c "$tmp/null"
    predict -o "$tmp/null"
    ok "predict -o into a device"
    check "predict -o leaves the device a device" -c "$tmp/null"
    run compile tiny.nn -o "$tmp/null"
    ok "compile -o into a device"
    check "compile -o leaves the device a device" -c "$tmp/null"
    check "compile -o into a device writes no header beside it" ! -e "$tmp/null.h"
    ln -s null "$tmp/null_link"
    train --save "$tmp/null_link"
    ok "train --save through a link to a device"
    check "the link stays a link" -L "$tmp/null_link"
    check "the device behind the link stays a device" -c "$tmp/null"
else
    skipped=$((skipped + 1))
    echo "skipped: device checks (mknod is not allowed here)"
fi
if mkdev full /dev/full; then
    train --save "$tmp/full"
    check "train --save into a full device exits 1" "$rc" -eq 1
    check "the message names the file and the reason" -n "$(grep "full.*No space left on device" "$err")"
    check "train --save leaves the full device a device" -c "$tmp/full"
    predict -o "$tmp/full"
    check "predict -o into a full device exits 1" "$rc" -eq 1
    check "predict -o leaves the full device a device" -c "$tmp/full"
else
    skipped=$((skipped + 1))
    echo "skipped: full-device checks (mknod is not allowed here)"
fi

# ---- symlinks ----------------------------------------------------------------------------------------------
mkdir "$tmp/real"
printf 'old' >"$tmp/real/ck.safetensors"
ln -s real/ck.safetensors "$tmp/link1"
ln -s "$tmp/link1" "$tmp/link2"
train --save "$tmp/link2"
ok "train --save through two links"
check "the first link stays a link" -L "$tmp/link1"
check "the second link stays a link" -L "$tmp/link2"
check "the file at the end of the links is the checkpoint" -n "$(same "$tmp/real/ck.safetensors" \
    "$tmp/ref.safetensors")"
ln -s real/new.npy "$tmp/dangling"
predict -o "$tmp/dangling"
ok "predict -o through a dangling link"
check "the dangling link stays a link" -L "$tmp/dangling"
check "the dangling link's target is created" -n "$(same "$tmp/real/new.npy" "$tmp/ref.npy")"

# ---- a FIFO, and /proc/self/fd/1 ---------------------------------------------------------------------------
mkfifo "$tmp/fifo"
(timeout 30 cat "$tmp/fifo" >"$tmp/fifo_out") &
reader=$!
predict -o "$tmp/fifo"
ok "predict -o into a FIFO"
wait $reader
check "the reader got the prediction" -n "$(same "$tmp/fifo_out" "$tmp/ref.npy")"
check "the FIFO stays a FIFO" -p "$tmp/fifo"
# a reader that goes away early: a write error (exit 1, EPIPE named), not death by SIGPIPE (exit 141)
mkfifo "$tmp/fifo_short"
(timeout 30 head -c 1 "$tmp/fifo_short" >/dev/null) &
reader=$!
sh "$here/../scale/gen.sh" layers 2000 >"$tmp/wide.nn" # about 2 MB of C: more than a pipe holds
run compile "$tmp/wide.nn" -o "$tmp/fifo_short"
wait $reader
check "compile -o into a FIFO whose reader left exits 1" "$rc" -eq 1
check "the message says the pipe broke" -n "$(grep -i "broken pipe" "$err")"
(cd "$here" && timeout 60 "$nnc" predict tiny.nn --weights "$tmp/ref.safetensors" --data x=x.csv -O0 \
    -o /proc/self/fd/1 >"$tmp/stdout.npy" 2>"$err")
rc=$? cmdline="nnc predict -o /proc/self/fd/1"
ok "predict -o /proc/self/fd/1"
check "standard output got the prediction" -n "$(same "$tmp/stdout.npy" "$tmp/ref.npy")"

# ---- no temporaries anywhere --------------------------------------------------------------------------------
cmdline="(all of the above)" rc=0
: >"$err"
check "no .nnc-tmp. temporary is left" -z "$(ls -a "$tmp" "$tmp/real" | grep -F .nnc-tmp.)"

echo "save targets: $pass passed, $fail failed, $skipped skipped"
[ $fail -eq 0 ]
